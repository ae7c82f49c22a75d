"""A segment definition compiled into one Django ``Q`` over leads: field conditions become
column lookups, behaviour conditions subqueries over the interactions in the time window: "did X
(at least N times)" an uncorrelated ``id IN (SELECT lead_id … GROUP BY lead_id HAVING count(*) >= N)``
computed once, "never did X" a ``NOT EXISTS`` anti-join. So a segment's members, their count or a page
of them is one SQL query, whatever the number of leads or conditions; nothing runs per lead."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db import connection
from django.db.models import Case, Count, Exists, FloatField, OuterRef, Q, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone

from ..models import Interaction
from .conditions import _parse_date, field_spec

NUMERIC_TEXT = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


def definition_q(definition: Mapping, *, now: datetime | None = None) -> Q:
    """The leads matching a *valid* definition (see :func:`.conditions.definition_errors`)."""
    now = now or timezone.now()
    parts = [condition_q(c, now=now) for c in definition.get("conditions") or []]
    if not parts:
        return Q(pk__in=[])
    return reduce(or_ if definition.get("match") == "any" else and_, parts)


def condition_q(condition: Mapping, *, now: datetime) -> Q:
    if "behaviour" in condition:
        return _behaviour_q(condition, now=now)
    return _field_q(condition, now=now)


def _behaviour_q(condition: Mapping, *, now: datetime) -> Q:
    events = Interaction.objects.filter(type=condition["behaviour"])
    if condition.get("within_days"):
        events = events.filter(occurred_at__gte=now - timedelta(days=condition["within_days"]))
    if condition.get("property"):
        path = "properties__" + condition["property"].replace(".", "__")
        events = events.filter(_value_q(path, condition["operator"], condition.get("value"), loose=True))
    if condition.get("never"):
        # An anti-join (NOT EXISTS), probed through the (lead, type, time) index or hashed once:
        # ``NOT IN`` would be hashed only while every doer fits in memory, and otherwise rescanned
        # for each lead.
        return ~Q(Exists(events.filter(lead_id=OuterRef("pk"))))
    # An uncorrelated subquery of lead ids, computed once (a semi-join) from the covering
    # (type, occurred_at, lead_id) index: a correlated subquery would run once for every lead.
    doers = events.values("lead_id")
    at_least = condition.get("at_least") or 1
    if at_least > 1:
        doers = doers.annotate(times=Count("id")).filter(times__gte=at_least).values("lead_id")
    return Q(pk__in=doers)


def _field_q(condition: Mapping, *, now: datetime) -> Q:
    name, operator, value = condition["field"], condition["operator"], condition.get("value")
    spec = field_spec(name)
    path, kind = spec.path, spec.kind
    if kind == "tags":
        return _tags_q(operator, value)
    if kind == "bool":
        if name in ("unsubscribed", "email_bounced"):
            return Q(**{f"{path}__isnull": not value})
        return Q(**{path: value})
    if kind == "owner":
        if operator == "present":
            return Q(owner_id__isnull=not value)
        return Q(owner_id__in=value) if operator == "in" else Q(owner_id=value)
    if kind == "form":
        if operator == "present":
            return Q(first_form__isnull=not value)
        return Q(first_form__slug__in=value) if operator == "in" else Q(first_form__slug=value)
    if kind == "choice":
        if operator == "in":
            return Q(**{f"{path}__in": value})
        exact = Q(**{path: value})
        return ~exact if operator == "not_equals" else exact
    if kind == "number":
        if operator == "between":
            return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
        lookup = {"equals": "exact", "gte": "gte", "lte": "lte"}[operator]
        return Q(**{f"{path}__{lookup}": value})
    if kind == "date":
        if operator == "within_days":
            return Q(**{f"{path}__gte": now - timedelta(days=value)})
        day = _parse_date(value)
        start = timezone.make_aware(datetime.combine(day, time.min))
        if operator == "gte":
            return Q(**{f"{path}__gte": start})
        return Q(**{f"{path}__lt": start + timedelta(days=1)})
    return _value_q(path, operator, value, loose=kind == "custom")


def _value_q(path: str, operator: str, value: Any, *, loose: bool) -> Q:
    """Text-like comparisons, case-insensitive as scoring rules compare. ``loose`` (JSON values:
    custom fields, interaction properties) lets a number match its text form too, and compares
    ``gte``/``lte`` numerically only where the stored value is a number."""
    if operator == "present":
        filled = Q(**{f"{path}__isnull": False}) & ~Q(**{path: ""})
        return filled if value else ~filled
    if operator == "in":
        return reduce(or_, (_equals_q(path, item, loose=loose) for item in value))
    if operator in ("equals", "not_equals"):
        match = _equals_q(path, value, loose=loose)
        return ~match if operator == "not_equals" else match
    if operator in ("contains", "not_contains"):
        match = Q(**{f"{path}__icontains": value})
        return ~match if operator == "not_contains" else match
    if operator == "endswith":
        return Q(**{f"{path}__iendswith": value})
    if operator == "regex":
        return Q(**{f"{path}__iregex": _database_regex(value)})
    if operator in ("gte", "lte"):
        if not loose:
            return Q(**{f"{path}__{operator}": value})
        # The JSON value as a number where it looks like one, else NULL (no match).
        number = Case(
            When(Q(**{f"{path}__regex": NUMERIC_TEXT}), then=Cast(KT(path), FloatField())),
            default=None,
            output_field=FloatField(),
        )
        compare = GreaterThanOrEqual if operator == "gte" else LessThanOrEqual
        return Q(compare(number, Value(float(value))))
    raise ValueError(f"operator {operator!r} is not compiled for {path}")


def _equals_q(path: str, value: Any, *, loose: bool) -> Q:
    if isinstance(value, str):
        return Q(**{f"{path}__iexact": value})
    if loose and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Q(**{path: value}) | Q(**{f"{path}__iexact": str(value)})
    return Q(**{path: value})


def _tags_q(operator: str, value: Any) -> Q:
    if operator == "present":
        empty = Q(tags=[]) | Q(tags__isnull=True)
        return ~empty if value else empty
    # jsonb containment on PostgreSQL; SQLite has none: the tag as a quoted item of the stored text.
    match = Q(tags__contains=[value]) if connection.vendor == "postgresql" else Q(tags__icontains=f'"{value}"')
    return ~match if operator == "not_contains" else match


def _database_regex(pattern: str) -> str:
    """Scoring rules' patterns are Python's; PostgreSQL's regular expressions spell the word
    boundary ``\\y`` (its ``\\b`` is a backspace). The rest of the shared syntax means the same."""
    if connection.vendor != "postgresql":
        return pattern
    return re.sub(r"(?<!\\)((?:\\\\)*)\\b", r"\1\\y", pattern)

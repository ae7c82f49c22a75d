"""What every report shares: how a ``group_by`` becomes a column of the transitions or of the
leads, the readable label of a group key, rates and the order groups are listed in, so that the
reports group, label and sort the same way."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields import CharField

from ..models import Form
from .postgres import _PG_COPY, _is_postgres

AWAITING = ("mql", "pql")

# group_by → field path from a StageTransition / from a Lead.
_TRANSITION_GROUP = {
    "source": "lead__source",
    "channel": "lead__channel",
    "form": "lead__first_form__slug",
    "owner": "owner_id",
    "utm_campaign": "lead__utm_campaign",
    "cycle": "cycle",
}
_LEAD_GROUP = {
    "source": "source",
    "channel": "channel",
    "form": "first_form__slug",
    "owner": "owner_id",
    "utm_campaign": "utm_campaign",
    "cycle": None,  # a new lead is in its first cycle
}


def _grp(path: str | None):
    return F(path) if path else Value(None, output_field=CharField())


def _transition_grp(group_by: str | None):
    if group_by in _PG_COPY and _is_postgres():
        # The lead's attribution copied onto the transition (migration 0003): no join.
        return RawSQL(f'"leads_stagetransition"."{_PG_COPY[group_by]}"', (), output_field=CharField())  # noqa: S611 - our column names
    return _grp(_TRANSITION_GROUP[group_by] if group_by else None)


def _form_slugs_for(group_by: str | None, keys) -> dict:
    """On PostgreSQL a ``form`` group key from the transitions is the form's id: its slug, by id."""
    if group_by != "form" or not _is_postgres():
        return {}
    ids = [k for k in keys if isinstance(k, int)]  # new leads are already grouped by slug
    return dict(Form.objects.filter(pk__in=ids).values_list("pk", "slug")) if ids else {}


def _lead_grp(group_by: str | None):
    if group_by is None:
        return _grp(None)
    path = _LEAD_GROUP[group_by]
    return _grp(path) if path else Value(1)


def _labels(group_by: str | None, keys) -> dict:
    """Readable labels for group keys (one query for owners, none otherwise)."""
    if group_by == "owner":
        ids = [k for k in keys if isinstance(k, int)]  # new leads are already grouped by slug
        users = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
        return {k: users.get(k, f"user {k}") if k is not None else "(no owner)" for k in keys}
    if group_by is None:
        return dict.fromkeys(keys, "All leads")
    return {k: str(k) if k not in (None, "") else "(none)" for k in keys}


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _sort_key(key):
    return (key is None or key == "", str(key))


def _scoped(qs, scope, field: str):
    """``qs`` limited to the leads of ``scope`` (a query of lead ids, e.g. a segment's members,
    or :func:`scope_materialized`'s array of them) as a subquery; ``qs`` itself without a scope."""
    return qs if scope is None else qs.filter(**{f"{field}__in": scope})


def scope_materialized(scope):
    """``scope`` (a query of lead ids) read once into an array the report's queries unnest, so a
    segment's conditions run once per report rather than once in each of its sections (and the
    planner knows how many leads there are). Unchanged without a scope or off PostgreSQL."""
    if scope is None or not _is_postgres():
        return scope
    with connection.cursor() as cursor:
        cursor.execute(*scope.query.sql_with_params())
        ids = [row[0] for row in cursor.fetchall()]
    return RawSQL("SELECT unnest(%s::bigint[])", (ids,))

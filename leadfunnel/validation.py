"""Input the database can really store, checked once for every way in (API bodies, query strings,
the public intake, forms): a bad value is a 400 naming the field instead of a 500 from the driver.

- **Integers** follow the column: :func:`integer_range` of a model field is the range its type has
  on the database in use (``SmallIntegerField`` ±32,767 on PostgreSQL, ``PositiveIntegerField``
  0…2³¹−1, …); :func:`db_integer` is a DRF field with those bounds. ``ModelSerializer`` fields get
  the same bounds from Django's own validators.
- **Timestamps**: :func:`parse_datetime` / :func:`check_datetime` accept ISO 8601 or Unix seconds,
  refuse UTC offsets beyond ±15:59 or not in whole minutes (PostgreSQL and psycopg refuse them) and
  moments outside years 1–9999 in UTC, and answer UTC. :class:`DbDateTimeField` (DRF) and
  :class:`DbIsoDateTimeFilter` (django-filter) apply it.
- **Report periods**: :func:`parse_period` turns ``since`` / ``until`` query values (a date or an
  ISO date-time) into ``[since, until)``.
- **NUL characters** (``\\u0000``: PostgreSQL's text and jsonb refuse them) in any string or key:
  :func:`nul_path` finds one; the API's parsers (:mod:`leadfunnel.parsers`), the query-string
  middleware and the public intake refuse them with :func:`refuse_nul`.
"""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.core import validators as django_validators
from django.db import models
from django.utils import dateparse, timezone
from rest_framework import serializers

from .errors import ValidationFailed

NUL = "\x00"
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


class InvalidInput(ValidationFailed):
    """A value the database cannot store; ``field`` names where it was."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", fields={field: [message]})
        self.field = field
        self.detail = message


# --- NUL characters ----------------------------------------------------------------------------


def nul_path(value: Any, path: tuple[str, ...] = ()) -> str | None:
    """The dotted path (``answers.0.q``) of the first string or key holding a NUL, else None."""
    if isinstance(value, str):
        return (".".join(path) or "non_field_errors") if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            text = str(key)
            here = (*path, text.replace(NUL, "") or "?")
            if NUL in text:
                return ".".join(here)
            found = nul_path(item, here)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = nul_path(item, (*path, str(index)))
            if found:
                return found
    return None


def refuse_nul(value: Any) -> None:
    """Raise :class:`InvalidInput` naming the top-level field of the first NUL character."""
    path = nul_path(value)
    if path is not None:
        field = path.split(".", 1)[0]
        where = f" (at {path})" if path != field else ""
        raise InvalidInput(field, f"Must not contain NUL (\\u0000) characters{where}.")


# --- integers ----------------------------------------------------------------------------------


def integer_range(model_field: models.Field) -> tuple[int | None, int | None]:
    """(lowest, highest) value the column of an integer model field takes on the database in use,
    narrowed by the field's own min/max validators."""
    low = high = None
    for validator in model_field.validators:  # Django adds the database's range for its type
        if isinstance(validator, django_validators.MinValueValidator):
            limit = validator.limit_value
            low = limit if low is None else max(low, limit)
        elif isinstance(validator, django_validators.MaxValueValidator):
            limit = validator.limit_value
            high = limit if high is None else min(high, limit)
    return low, high


def db_integer(model: type[models.Model], name: str, **kwargs) -> serializers.IntegerField:
    """A DRF integer field bounded like ``model.name``'s column (tighter ``min_value`` /
    ``max_value`` given here win)."""
    low, high = integer_range(model._meta.get_field(name))
    if low is not None:
        kwargs["min_value"] = max(low, kwargs.get("min_value", low))
    if high is not None:
        kwargs["max_value"] = min(high, kwargs.get("max_value", high))
    return serializers.IntegerField(**kwargs)


# --- timestamps --------------------------------------------------------------------------------


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    seconds = abs(int(offset.total_seconds()))
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def check_datetime(value: datetime, *, field: str) -> datetime:
    """``value`` in UTC, if PostgreSQL can store it; :class:`InvalidInput` otherwise. Naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset() or timedelta(0)
    if abs(offset) > MAX_UTC_OFFSET:
        raise InvalidInput(field, f"The UTC offset {_offset_text(offset)} is out of range (at most ±15:59).")
    if offset % timedelta(minutes=1):
        raise InvalidInput(field, "The UTC offset must be whole minutes (e.g. +05:30).")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(field, "Out of range: the moment must fall within years 1 to 9999 (UTC).") from None


def parse_datetime(value: Any, *, field: str) -> datetime:
    """ISO 8601 (``Z`` or an offset; naive means UTC) or Unix seconds → a UTC datetime the
    database can store; :class:`InvalidInput` naming ``field`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput(field, "Must be an ISO 8601 date-time, e.g. 2026-05-01T12:00:00Z.")
    if isinstance(value, (int, float)):
        try:
            return check_datetime(datetime.fromtimestamp(value, tz=UTC), field=field)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput(field, "Timestamp out of range.") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, "Must be an ISO 8601 date-time, e.g. 2026-05-01T12:00:00Z.") from None
    return check_datetime(parsed, field=field)


def _period_bound(raw: Any, name: str, *, end: bool) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValidationFailed(f"{name} must be a date or a date-time.", fields={name: ["Not a date."]})
    try:
        # A date means the whole day: since = its start, until = the end of that day. Checked
        # first: parse_datetime reads a bare date as its midnight.
        day = dateparse.parse_date(raw) if dateparse.date_re.match(raw) else None
        if day is not None:
            value = datetime.combine(day + timedelta(days=1) if end else day, time.min)
        else:
            value = dateparse.parse_datetime(raw)
            if value is None:
                raise ValueError("not a date")
    except (ValueError, OverflowError):  # e.g. 2026-02-30, or the day after 9999-12-31
        raise ValidationFailed(
            f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time, got {raw!r}.",
            fields={name: ["Not a date."]},
        ) from None
    value = timezone.make_aware(value) if timezone.is_naive(value) else value
    return check_datetime(value, field=name)  # offsets and years the database can take


def parse_period(since: Any, until: Any, *, default: timedelta) -> tuple[datetime, datetime]:
    """``[since, until)`` from dates or ISO date-times; until defaults to now, since to ``default``
    before until. A 400 naming the field on nonsense or when since is not before until."""
    until_at = _period_bound(until, "until", end=True) or timezone.now()
    try:
        since_at = _period_bound(since, "since", end=False) or until_at - default
    except OverflowError:
        raise ValidationFailed("until is too early.", fields={"until": ["Too early: give since."]}) from None
    if since_at >= until_at:
        raise ValidationFailed("since must be before until.", fields={"since": ["Must be before until."]})
    return since_at, until_at


class DbDateTimeField(serializers.DateTimeField):
    """DRF's date-time field with :func:`check_datetime`: offsets and years PostgreSQL can store."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                return parse_datetime(value, field=self.field_name or "value")
            except InvalidInput as exc:
                raise serializers.ValidationError(exc.detail) from None
        parsed = super().to_internal_value(value)
        try:
            return check_datetime(parsed, field=self.field_name or "value")
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.detail) from None


class DbIsoDateTimeFormField(forms.DateTimeField):
    """A query-string date-time (django-filter) checked like every other timestamp."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_datetime(str(value), field=self.label or "value")
        except InvalidInput as exc:
            raise forms.ValidationError(exc.detail, code="invalid") from None


class DbIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = DbIsoDateTimeFormField

"""The funnel API's query parameters: the period and the grouping, turned into values every
report accepts or refused with a 400 (``ValidationFailed``) before any query runs."""

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from leadfunnel.errors import ValidationFailed
from leadfunnel.validation import check_datetime

GROUP_BY_CHOICES = ("source", "channel", "form", "owner", "utm_campaign", "cycle")
DEFAULT_PERIOD = timedelta(days=30)


def _parse_bound(raw: str | None, name: str, *, end: bool) -> datetime | None:
    if raw in (None, ""):
        return None
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        if day is None:
            raise ValidationFailed(
                f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time, got {raw!r}.",
                fields={name: ["Not a date."]},
            )
        # A date means the whole day: since = its start, until = the end of that day.
        value = datetime.combine(day + timedelta(days=1) if end else day, time.min)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return check_datetime(value, field=name)  # offsets and years the database can take


def parse_period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """Turn query parameters into ``[since, until)``; default: the last 30 days. 400 on nonsense."""
    try:
        since_at = _parse_bound(since, "since", end=False)
        until_at = _parse_bound(until, "until", end=True)
    except (ValueError, OverflowError) as exc:  # e.g. 2026-02-30, or the day after 9999-12-31
        raise ValidationFailed(f"Invalid date: {exc}.") from None
    until_at = until_at or timezone.now()
    try:
        since_at = since_at or until_at - DEFAULT_PERIOD
    except OverflowError:
        raise ValidationFailed("until is too early.", fields={"until": ["Too early: give since."]}) from None
    if since_at >= until_at:
        raise ValidationFailed("since must be before until.", fields={"since": ["Must be before until."]})
    return since_at, until_at


def parse_group_by(raw: str | None) -> str | None:
    if raw in (None, ""):
        return None
    if raw not in GROUP_BY_CHOICES:
        raise ValidationFailed(
            f"group_by must be one of {', '.join(GROUP_BY_CHOICES)}, got {raw!r}.",
            fields={"group_by": ["Unknown grouping."]},
        )
    return raw

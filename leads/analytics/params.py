"""The funnel API's query parameters: the period and the grouping, turned into values every
report accepts or refused with a 400 (``ValidationFailed``) before any query runs."""

from datetime import datetime, timedelta

from leadfunnel import validation
from leadfunnel.errors import ValidationFailed

GROUP_BY_CHOICES = ("source", "channel", "form", "owner", "utm_campaign", "cycle")
DEFAULT_PERIOD = timedelta(days=30)


def parse_period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """Turn query parameters into ``[since, until)``; default: the last 30 days. 400 on nonsense."""
    return validation.parse_period(since, until, default=DEFAULT_PERIOD)


def parse_group_by(raw: str | None) -> str | None:
    if raw in (None, ""):
        return None
    if raw not in GROUP_BY_CHOICES:
        raise ValidationFailed(
            f"group_by must be one of {', '.join(GROUP_BY_CHOICES)}, got {raw!r}.",
            fields={"group_by": ["Unknown grouping."]},
        )
    return raw

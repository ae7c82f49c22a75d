"""The product-qualified-lead rule (enough usage soon enough after a trial starts), apart from
the points arithmetic because a PQL does not depend on the score."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta


def pql_reached(rule: Mapping, *, trial_times: Iterable[datetime], usage_times: Iterable[datetime]) -> bool:
    """PQL rule: a trial started, then at least ``min_usage`` usage events within ``within_days`` of it."""
    if not rule or not rule.get("enabled"):
        return False
    min_usage = int(rule.get("min_usage") or 0)
    window = timedelta(days=float(rule.get("within_days") or 0))
    usage = sorted(usage_times)
    for start in trial_times:
        count = sum(1 for at in usage if start <= at <= start + window)
        if count >= min_usage:
            return True
    return False

"""Time arithmetic for waits and send windows (pure, no ORM)."""

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

WAIT_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


@lru_cache(maxsize=512)
def zone_for(name: str) -> ZoneInfo:
    """The lead's time zone when it is a valid IANA name, else the account's (TIME_ZONE)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(settings.TIME_ZONE)


def _parse_time(value) -> time:
    if isinstance(value, time):
        return value
    hours, minutes = str(value).split(":")[:2]
    return time(int(hours), int(minutes))


def wait_until(config: dict, *, now: datetime, zone: ZoneInfo) -> datetime:
    """When a wait step is over: after a duration, or at the next allowed weekday/time (local)."""
    for unit, seconds in WAIT_UNITS.items():
        if unit in config:
            return now + timedelta(seconds=float(config[unit]) * seconds)
    until = config.get("until") or {}
    at = _parse_time(until.get("time", "09:00"))
    weekdays = set(until.get("weekdays") or range(7))
    local = now.astimezone(zone)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in weekdays:
            continue
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate > local:
            return candidate
    return now + timedelta(days=1)


def window_next_open(
    *, start: time | None, end: time | None, days: list[int], now: datetime, zone: ZoneInfo
) -> datetime | None:
    """None when ``now`` is inside the send window; else the next instant it opens.

    A window whose end is before its start spans midnight (e.g. 22:00–06:00).
    """
    if start is None and not days:
        return None
    allowed = set(days or range(7))
    local = now.astimezone(zone)

    def inside(moment: datetime) -> bool:
        if moment.weekday() not in allowed:
            return False
        if start is None or end is None:
            return True
        clock = moment.time()
        if start <= end:
            return start <= clock < end
        return clock >= start or clock < end

    if inside(local):
        return None
    open_at = start or time(0, 0)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        candidate = datetime.combine(day, open_at, tzinfo=zone)
        if candidate > local and inside(candidate):
            return candidate
    return now + timedelta(days=1)

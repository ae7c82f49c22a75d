"""Nurturing settings: a Django setting ``NURTURE_<NAME>`` wins, else the environment
variable of the same name, else the default. Malformed values stop the process."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, object] = {
    # How often beat asks for due steps (seconds). Tests of the real beat set it to 1.
    "TICK_SECONDS": 60.0,
    # Enrolments claimed per transaction by one executor call.
    "BATCH_SIZE": 500,
    # At most this many process_due tasks are fanned out per tick.
    "MAX_FANOUT": 20,
    # A process_due task keeps draining batches for at most this long (seconds).
    "TASK_TIME_BUDGET": 50.0,
    # Per-lead cap across all sequences, messages per rolling 24 hours (0 = no cap).
    "MAX_MESSAGES_PER_DAY": 3,
    "SMS_BACKEND": "nurturing.channels.ConsoleSMSBackend",
    # Provider errors: transient ones are retried with exponential backoff this many times.
    "MAX_ATTEMPTS": 5,
    "RETRY_BASE_SECONDS": 60.0,
    # A pending send not picked up by its executor within this time is delivered by the sweeper.
    "SEND_LEASE_SECONDS": 120.0,
    # A send still marked "sending" after this long lost its worker mid-call (see README).
    "STALE_SENDING_SECONDS": 900.0,
    "FROM_EMAIL": "",
}


def nurture_setting(name: str):
    key = f"NURTURE_{name}"
    default = DEFAULTS[name]
    if hasattr(settings, key):
        return getattr(settings, key)
    raw = os.environ.get(key)
    if raw is None or raw == "":
        if name == "FROM_EMAIL":
            return settings.DEFAULT_FROM_EMAIL
        return default
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{key} must be a number, got {raw!r}") from None
    return raw

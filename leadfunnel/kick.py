"""Asking a worker to drain a queue, at most once per moment however many requests ask.

A request that queued work calls :func:`kick_once` after commit: the first one in a while sends
the task; the others find the mark (a cache ``add``: ``SET NX`` on Redis) and rely on the task
already running. The task calls :func:`kick_release` before its last look at the queue, so work
committed before the release is seen by that look, and work committed after it kicks again. The
mark expires by itself (``ttl``), so a lost task costs at most that long (and a beat sweep drains
whatever is left).

Kicks run after commit inside the request, so they fail fast: a plain ``apply_async`` spends 3–4 s
in kombu's connection retries when Redis refuses connections, so the connection is checked once
without retries first, and after a failure further kicks to that broker are skipped for a while.
"""

import logging
import time

from django.core.cache import cache

from .celery import app

logger = logging.getLogger(__name__)

BROKER_BACKOFF_SECONDS = 10.0
_broker_down_until: dict[str, float] = {}


def send_now(task_name: str, *, args: list | None = None) -> bool:
    """Queue ``task_name`` by name (eager: run it here). False when the broker is unavailable."""
    signature = app.signature(task_name, args=args or [])
    if app.conf.task_always_eager:
        signature.apply_async()
        return True
    broker = str(app.conf.broker_url)
    if time.monotonic() < _broker_down_until.get(broker, 0.0):
        return False
    try:
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, timeout=1)
            signature.apply_async(producer=producer, retry=False)
    except Exception as exc:
        _broker_down_until[broker] = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("broker unavailable, %s left for its sweep: %s", task_name, exc)
        return False
    _broker_down_until.pop(broker, None)
    return True


def kick_once(task_name: str, *, key: str, ttl: int = 1) -> None:
    """Queue ``task_name`` unless a kick for ``key`` is outstanding. Never raises (the sweep
    drains what a failed kick leaves)."""
    try:
        if not app.conf.task_always_eager and not cache.add(f"kick:{key}", 1, timeout=ttl):
            return
    except Exception as exc:  # the cache is down: kick anyway
        logger.info("kick mark for %s unavailable: %s", key, exc)
    if not send_now(task_name) and not app.conf.task_always_eager:
        kick_release(key)


def kick_release(key: str) -> None:
    try:
        cache.delete(f"kick:{key}")
    except Exception as exc:
        logger.info("kick mark for %s not released (it expires): %s", key, exc)

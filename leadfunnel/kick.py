"""Asking a worker to drain a queue, at most once per moment however many requests ask.

A request that queued work calls :func:`kick_once` after commit: the first one in a while sends
the task; the others find the mark (a cache ``add``: ``SET NX`` on Redis) and rely on the task
already running. The task calls :func:`kick_release` before its last look at the queue, so work
committed before the release is seen by that look, and work committed after it kicks again. The
mark expires by itself (``ttl``), so a lost task costs at most that long (and a beat sweep drains
whatever is left).
"""

import logging

from django.core.cache import cache

from .celery import app

logger = logging.getLogger(__name__)


def kick_once(task_name: str, *, key: str, ttl: int = 1) -> None:
    """Queue ``task_name`` unless a kick for ``key`` is outstanding. Never raises (the sweep
    drains what a failed kick leaves)."""
    try:
        if not app.conf.task_always_eager and not cache.add(f"kick:{key}", 1, timeout=ttl):
            return
        app.signature(task_name).apply_async(retry=False)
    except Exception as exc:
        logger.warning("could not ask a worker to run %s now (the sweep will): %s", task_name, exc)


def kick_release(key: str) -> None:
    cache.delete(f"kick:{key}")

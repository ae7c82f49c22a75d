"""Nurture tasks (queue "nurture"): thin wrappers around nurturing.services.

Beat runs ``tick`` every NURTURE_TICK_SECONDS (``CELERY_BEAT_SCHEDULE`` in
leadfunnel/settings.py): it fans out as many
``process_due`` tasks as there are batches due (bounded), and one sweeper.
Each ``process_due`` claims its own batches with SKIP LOCKED, so tasks from a
duplicate tick simply find nothing left to claim.
"""

import math
import time

from celery import shared_task

from . import services
from .conf import nurture_setting


@shared_task(acks_late=True)
def tick() -> int:
    batch_size = nurture_setting("BATCH_SIZE")
    due = services.due_count(limit=batch_size * nurture_setting("MAX_FANOUT"))
    tasks = min(math.ceil(due / batch_size), nurture_setting("MAX_FANOUT"))
    for _ in range(tasks):
        process_due.delay()
    deliver_pending.delay()
    return tasks


@shared_task(acks_late=True)
def process_due(batch_size: int | None = None) -> int:
    """Drain due steps batch after batch, within a time budget."""
    deadline = time.monotonic() + nurture_setting("TASK_TIME_BUDGET")
    batch_size = batch_size or nurture_setting("BATCH_SIZE")
    total = 0
    while time.monotonic() < deadline:
        done = services.process_due_steps(batch_size=batch_size)
        total += done
        if done == 0:
            break
    return total


@shared_task(acks_late=True)
def deliver_pending() -> dict:
    return services.deliver_pending()


@shared_task(acks_late=True)
def enroll_segments() -> int:
    return services.segments_enroll()

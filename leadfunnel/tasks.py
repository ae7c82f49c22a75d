"""Cross-cutting periodic work: the outbox sweeper and housekeeping (``CELERY_BEAT_SCHEDULE``)."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .models import OutboxMessage
from .outbox import outbox_dispatch

# Dispatched outbox rows are kept this long for inspection, then deleted.
OUTBOX_RETENTION = timedelta(days=7)


@shared_task(acks_late=True)
def dispatch_outbox_messages(message_ids: list[int]) -> int:
    return outbox_dispatch(message_ids=message_ids)


@shared_task(acks_late=True)
def sweep_outbox() -> int:
    """Deliver side effects whose immediate kick was lost (broker down, worker killed)."""
    total = 0
    while True:
        done = outbox_dispatch(limit=500)
        total += done
        if done < 500:
            return total


@shared_task(acks_late=True)
def housekeeping() -> dict:
    """Delete dispatched outbox rows past retention. Safe to run twice."""
    cutoff = timezone.now() - OUTBOX_RETENTION
    deleted, _ = OutboxMessage.objects.filter(dispatched_at__lt=cutoff).delete()
    return {"outbox_deleted": deleted}

"""Celery tasks of the plumbing: the outbox, notification emails, webhook deliveries, housekeeping.

Thin wrappers that take ids and call the plumbing. The modules that queue these tasks
(outbox, notifications, webhooks) send them by name (``*_TASK``) through the Celery app,
so they never import this module; the periodic ones are in ``CELERY_BEAT_SCHEDULE``
(leadfunnel/settings.py).
"""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import notifications, outbox, webhooks
from .models import OutboxMessage

# Dispatched outbox rows are kept this long for inspection, then deleted.
OUTBOX_RETENTION = timedelta(days=7)


@shared_task(name=outbox.DISPATCH_TASK, acks_late=True)
def dispatch_outbox_messages(message_ids: list[int]) -> int:
    return outbox.outbox_dispatch(message_ids=message_ids)


@shared_task(name=outbox.DRAIN_TASK, acks_late=True)
def drain_outbox() -> int:
    """Dispatch every due message, a batch per transaction (after a request's kick)."""
    return outbox.outbox_drain()


@shared_task(name="leadfunnel.tasks.sweep_outbox", acks_late=True)
def sweep_outbox() -> int:
    """Deliver side effects whose immediate kick was lost (broker down, worker killed)."""
    return outbox.outbox_drain()


@shared_task(name="leadfunnel.tasks.housekeeping", acks_late=True)
def housekeeping() -> dict:
    """Delete dispatched outbox rows past retention. Safe to run twice."""
    cutoff = timezone.now() - OUTBOX_RETENTION
    deleted, _ = OutboxMessage.objects.filter(dispatched_at__lt=cutoff).delete()
    return {"outbox_deleted": deleted}


@shared_task(name=notifications.SEND_TASK, acks_late=True)
def notifications_send(notification_ids: list[int]) -> int:
    return sum(1 for pk in notification_ids if notifications.notification_send(notification_id=pk))


@shared_task(name="leadfunnel.tasks.notifications_sweep", acks_late=True)
def notifications_sweep() -> int:
    return sum(
        1 for pk in notifications.notifications_pending_ids() if notifications.notification_send(notification_id=pk)
    )


@shared_task(name=webhooks.DELIVER_TASK, acks_late=True)
def webhooks_deliver(delivery_id: int) -> str | None:
    return webhooks.webhook_deliver(delivery_id=delivery_id)


@shared_task(name="leadfunnel.tasks.webhooks_sweep", acks_late=True)
def webhooks_sweep() -> int:
    """Retries whose time has come, and deliveries whose kick was lost."""
    done = 0
    for pk in webhooks.webhooks_due_ids():
        if webhooks.webhook_deliver(delivery_id=pk) is not None:
            done += 1
    return done

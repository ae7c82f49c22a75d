"""Email notifications to LeadFunnel users (reps, managers, admins).

Two halves, so an email is never sent inside a database transaction:

- :func:`notification_create` writes a :class:`Notification` row (inside the caller's
  transaction: an outbox handler, the SLA sweep, the webhook disabler) and asks for
  delivery after commit;
- :func:`notification_send` (run by the task ``leadfunnel.tasks.notifications_send``)
  claims each row with a compare-and-swap update, sends it, and marks it sent.

A claimed row that was never marked sent (the worker died mid-send) is released
after ``CLAIM_TIMEOUT`` and sent again: at most one duplicate in that rare case,
never a lost notice.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .celery import app
from .models import Notification

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=10)
MAX_ATTEMPTS = 8

# The task that sends given notifications (leadfunnel/tasks.py), queued by name.
SEND_TASK = "leadfunnel.tasks.notifications_send"


def _kick(ids: list[int]) -> None:
    try:
        app.signature(SEND_TASK, args=[ids]).apply_async(retry=False)
    except Exception as exc:  # broker down: the beat sweep sends them later
        logger.warning("broker unavailable, %d notification(s) left for the sweep: %s", len(ids), exc)


def notification_create(
    *, recipients: Iterable, kind: str, subject: str, body: str, dedupe_key: str
) -> list[Notification]:
    """Queue one email per recipient (users without an email address are skipped).

    Idempotent: the same ``dedupe_key`` for the same recipient is queued once.
    """
    users = [u for u in recipients if u is not None and getattr(u, "email", "")]
    if not users:
        return []
    existing = set(
        Notification.objects.filter(recipient__in=users, dedupe_key=dedupe_key).values_list("recipient_id", flat=True)
    )
    rows = [
        Notification(recipient=user, kind=kind, subject=subject[:300], body=body, dedupe_key=dedupe_key)
        for user in {u.pk: u for u in users}.values()
        if user.pk not in existing
    ]
    if not rows:
        return []
    try:
        with transaction.atomic():
            created = Notification.objects.bulk_create(rows)
    except IntegrityError:  # a concurrent writer queued the same notice
        return []
    ids = [n.pk for n in created if n.pk is not None]
    if ids:
        transaction.on_commit(lambda: _kick(ids))
    return created


def notification_send(*, notification_id: int) -> bool:
    """Send one notification if nobody else has it. Must run outside a transaction."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT))
        .update(claimed_at=now)
    )
    if not claimed:
        return False
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    try:
        send_mail(
            subject=notification.subject,
            message=notification.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[notification.recipient.email],
        )
    except Exception as exc:
        logger.warning("notification %s not sent: %s", notification_id, exc)
        Notification.objects.filter(pk=notification_id).update(
            claimed_at=None, attempts=notification.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return False
    Notification.objects.filter(pk=notification_id).update(sent_at=timezone.now(), attempts=notification.attempts + 1)
    return True


def notifications_pending_ids(*, limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(
        Notification.objects.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def admins() -> list:
    return list(get_user_model().objects.filter(is_superuser=True, is_active=True))

"""The transactional outbox: the one way to cause a side effect after a change.

Usage inside a service (already in a transaction or not)::

    outbox_publish(topic="lead.stage_changed", payload={"lead_id": lead.id, ...})

and, in the app that reacts to it (imported at start-up by ``AppConfig.ready``)::

    @outbox_handler("lead.stage_changed")
    def enrol_on_stage(payload: dict) -> None: ...

Handlers run in a worker, inside the transaction that marks the message
dispatched, so their database writes and the "done" mark commit together.
Handlers must not do network I/O themselves; they write rows (a webhook
delivery, a message to send) that their own claim-then-act tasks deliver.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .kick import kick_once, kick_release
from .models import OutboxMessage

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]
_handlers: dict[str, list[Handler]] = {}

MAX_ATTEMPTS = 10

# The tasks that dispatch given messages and drain every due one (leadfunnel/tasks.py), queued
# by name: the task module imports this one, not the other way round.
DISPATCH_TASK = "leadfunnel.tasks.dispatch_outbox_messages"
DRAIN_TASK = "leadfunnel.tasks.drain_outbox"
DRAIN_BATCH = 200


def outbox_handler(topic: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _handlers.setdefault(topic, [])
        if func not in _handlers[topic]:
            _handlers[topic].append(func)
        return func

    return register


def handlers_for(topic: str) -> list[Handler]:
    return list(_handlers.get(topic, ())) + list(_handlers.get("*", ()))


def _kick(message_ids: list[int]) -> None:
    """After commit: have a worker dispatch now (one drain for all the requests of a moment). If
    the broker is down, the sweeper delivers later (see :mod:`leadfunnel.kick`)."""
    kick_once(DRAIN_TASK, key="outbox")


def outbox_publish(*, topic: str, payload: dict) -> OutboxMessage:
    message = OutboxMessage.objects.create(topic=topic, payload=payload)
    transaction.on_commit(lambda: _kick([message.pk]))
    return message


def outbox_publish_many(*, messages: list[tuple[str, dict]]) -> list[OutboxMessage]:
    """Set-based variant for bulk paths: one INSERT for many messages."""
    if not messages:
        return []
    rows = OutboxMessage.objects.bulk_create([OutboxMessage(topic=t, payload=p) for t, p in messages])
    ids = [row.pk for row in rows if row.pk is not None]
    if ids:
        transaction.on_commit(lambda: _kick(ids))
    return rows


def outbox_dispatch(*, message_ids: list[int] | None = None, limit: int = DRAIN_BATCH) -> int:
    """Dispatch one batch of pending messages (the given ones, or any due), oldest first. Returns
    how many were handled.

    The batch is claimed (``SKIP LOCKED``: another worker takes other messages), handled and
    marked in one transaction; each message's handlers run in a savepoint of their own, so one
    failing handler does not hold back the others: its message is retried later with backoff.
    """
    now = timezone.now()
    with transaction.atomic():
        pending = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
            dispatched_at__isnull=True, available_at__lte=now
        )
        if message_ids is not None:
            pending = pending.filter(pk__in=message_ids)
        messages = list(pending.order_by("available_at", "pk")[:limit])
        done, failed = [], []
        for message in messages:
            try:
                with transaction.atomic():
                    for handler in handlers_for(message.topic):
                        handler(message.payload)
            except Exception as exc:
                logger.exception("outbox message %s failed", message.pk)
                failed.append((message, exc))
            else:
                done.append(message.pk)
        if done:
            OutboxMessage.objects.filter(pk__in=done).update(dispatched_at=timezone.now(), attempts=F("attempts") + 1)
        for message, exc in failed:
            attempts = message.attempts + 1
            OutboxMessage.objects.filter(pk=message.pk).update(
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                available_at=timezone.now() + timedelta(seconds=min(3600, 2**attempts * 5)),
            )
    return len(done)


def outbox_drain() -> int:
    """Dispatch every due message, a batch at a time (the worker's task after a kick)."""
    total = 0
    while True:
        done = outbox_dispatch()
        total += done
        if done:
            continue
        kick_release("outbox")
        done = outbox_dispatch()
        if not done:
            return total
        total += done

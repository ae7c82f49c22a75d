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
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .celery import app
from .models import OutboxMessage

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]
_handlers: dict[str, list[Handler]] = {}

MAX_ATTEMPTS = 10

# The task that dispatches given messages (leadfunnel/tasks.py), queued by name: the
# task module imports this one, not the other way round.
DISPATCH_TASK = "leadfunnel.tasks.dispatch_outbox_messages"


def outbox_handler(topic: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _handlers.setdefault(topic, [])
        if func not in _handlers[topic]:
            _handlers[topic].append(func)
        return func

    return register


def handlers_for(topic: str) -> list[Handler]:
    return list(_handlers.get(topic, ())) + list(_handlers.get("*", ()))


# After a failed kick, further kicks to that broker are skipped for this long (the sweeper
# delivers meanwhile), so an outage costs one fast connection attempt, not one per request.
BROKER_BACKOFF_SECONDS = 10.0
_broker_down_until: dict[str, float] = {}


def _kick(message_ids: list[int]) -> None:
    """Ask a worker to dispatch now. If the broker is down, the sweeper will do it later.

    Runs after commit, inside the request that made the change, so it must fail fast:
    a plain ``apply_async`` spends 3–4 s in kombu's connection retries when Redis refuses
    connections. The connection is checked once without retries first.

    The task is queued by name (a signature resolves to the registered task, so with
    ``CELERY_TASK_ALWAYS_EAGER`` it runs in-process, as in tests).
    """
    broker = str(app.conf.broker_url)
    dispatch = app.signature(DISPATCH_TASK, args=[message_ids])
    try:
        if app.conf.task_always_eager:
            dispatch.apply_async()
            return
        if time.monotonic() < _broker_down_until.get(broker, 0.0):
            logger.info("broker marked down, %d outbox message(s) left for the sweeper", len(message_ids))
            return
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, timeout=1)
            dispatch.apply_async(producer=producer, retry=False)
    except Exception as exc:
        if not app.conf.task_always_eager:
            _broker_down_until[broker] = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("broker unavailable, %d outbox message(s) left for the sweeper: %s", len(message_ids), exc)
    else:
        _broker_down_until.pop(broker, None)


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


def outbox_dispatch(*, message_ids: list[int] | None = None, limit: int = 500) -> int:
    """Dispatch pending messages (the given ones, or any due). Returns how many were handled.

    Each message is claimed, handled and marked in its own transaction, so one
    failing handler does not hold back the others; it is retried later with backoff.
    """
    now = timezone.now()
    pending = OutboxMessage.objects.filter(dispatched_at__isnull=True, available_at__lte=now)
    if message_ids is not None:
        pending = pending.filter(pk__in=message_ids)
    candidate_ids = list(pending.order_by("available_at").values_list("pk", flat=True)[:limit])
    done = 0
    for message_id in candidate_ids:
        if _dispatch_one(message_id):
            done += 1
    return done


def _dispatch_one(message_id: int) -> bool:
    try:
        with transaction.atomic():
            message = (
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(pk=message_id, dispatched_at__isnull=True)
                .first()
            )
            if message is None:
                return False  # someone else has it, or it is done
            for handler in handlers_for(message.topic):
                handler(message.payload)
            message.dispatched_at = timezone.now()
            message.attempts += 1
            message.save(update_fields=["dispatched_at", "attempts"])
            return True
    except Exception as exc:
        logger.exception("outbox message %s failed", message_id)
        attempts = OutboxMessage.objects.filter(pk=message_id).values_list("attempts", flat=True).first() or 0
        attempts += 1
        delay = timedelta(seconds=min(3600, 2**attempts * 5))
        OutboxMessage.objects.filter(pk=message_id, dispatched_at__isnull=True).update(
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            available_at=timezone.now() + delay,
        )
        return False

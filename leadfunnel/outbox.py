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
from .sql import bulk_insert

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]
_handlers: dict[str, list[Handler]] = {}
# Handlers that take every payload of their topic in a dispatched batch at once (``many=True``).
_many: set[Handler] = set()

MAX_ATTEMPTS = 10

# The tasks that dispatch given messages and drain every due one (leadfunnel/tasks.py), queued
# by name: the task module imports this one, not the other way round.
DISPATCH_TASK = "leadfunnel.tasks.dispatch_outbox_messages"
DRAIN_TASK = "leadfunnel.tasks.drain_outbox"
DRAIN_BATCH = 200


def outbox_handler(topic: str, *, many: bool = False) -> Callable[[Handler], Handler]:
    """Register ``func`` for ``topic``. ``many``: it takes a list of payloads (every message of the
    topic in a dispatched batch, set-based) instead of one payload."""

    def register(func: Handler) -> Handler:
        _handlers.setdefault(topic, [])
        if func not in _handlers[topic]:
            _handlers[topic].append(func)
        if many:
            _many.add(func)
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


_COLUMNS = ("topic", "payload", "created_at", "available_at", "attempts", "dispatched_at", "last_error")


def outbox_publish_many(*, messages: list[tuple[str, dict]]) -> list[OutboxMessage]:
    """Set-based variant for bulk paths: one INSERT for many messages."""
    if not messages:
        return []
    now = timezone.now()
    rows = [OutboxMessage(topic=t, payload=p, created_at=now, available_at=now) for t, p in messages]
    returned = bulk_insert(
        OutboxMessage,
        _COLUMNS,
        [(m.topic, m.payload, now, now, 0, None, "") for m in rows],
        returning=("id",),
    )
    for row, (pk,) in zip(rows, returned, strict=True):
        row.pk = pk
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: _kick(ids))
    return rows


def outbox_dispatch(*, message_ids: list[int] | None = None, limit: int = DRAIN_BATCH) -> int:
    """Dispatch one batch of pending messages (the given ones, or any due), oldest first. Returns
    how many were handled.

    The batch is claimed (``SKIP LOCKED``: another worker takes other messages), handled and
    marked in one transaction. A set-based handler gets all its topic's payloads of the batch at
    once; the others get one message at a time. Each call runs in a savepoint, so a failing
    handler does not hold back the others: a failing set-based call is retried message by message,
    and a message whose handler fails is retried later with backoff (its other handlers run again
    then: handlers are idempotent).
    """
    now = timezone.now()
    with transaction.atomic():
        pending = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
            dispatched_at__isnull=True, available_at__lte=now
        )
        if message_ids is not None:
            pending = pending.filter(pk__in=message_ids)
        messages = list(pending.order_by("available_at", "pk")[:limit])
        errors: dict[int, Exception] = {}
        by_topic: dict[str, list[OutboxMessage]] = {}
        for message in messages:
            by_topic.setdefault(message.topic, []).append(message)
        for topic, group in by_topic.items():
            for handler in handlers_for(topic):
                if handler in _many:
                    failure = _run(handler, [m.payload for m in group])
                    if failure is not None and len(group) > 1:
                        # Which message does it fail on? Each alone, so the others go through.
                        for message in group:
                            alone = _run(handler, [message.payload])
                            if alone is not None:
                                errors.setdefault(message.pk, alone)
                    elif failure is not None:
                        errors.setdefault(group[0].pk, failure)
                    continue
                for message in group:
                    failure = _run(handler, message.payload)
                    if failure is not None:
                        errors.setdefault(message.pk, failure)
        done = [m.pk for m in messages if m.pk not in errors]
        if done:
            OutboxMessage.objects.filter(pk__in=done).update(dispatched_at=timezone.now(), attempts=F("attempts") + 1)
        for message in messages:
            exc = errors.get(message.pk)
            if exc is None:
                continue
            attempts = message.attempts + 1
            OutboxMessage.objects.filter(pk=message.pk).update(
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                available_at=timezone.now() + timedelta(seconds=min(3600, 2**attempts * 5)),
            )
    return len(done)


def _run(handler: Handler, payload) -> Exception | None:
    """Call one handler in a savepoint; answer its exception (logged), None when it succeeded."""
    try:
        with transaction.atomic():
            handler(payload)
    except Exception as exc:
        logger.exception("outbox handler %s failed", getattr(handler, "__name__", handler))
        return exc
    return None


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

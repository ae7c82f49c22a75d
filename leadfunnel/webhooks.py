"""Outgoing webhooks: subscriptions, queueing, and delivery.

Flow: a service publishes an outbox topic (``lead.stage_changed``, ``lead.created``,
``sequence.goal_reached`` …) → an outbox handler calls :func:`webhook_queue`, which
writes one :class:`WebhookDelivery` per matching active subscription (DB-only, inside
the outbox transaction) and asks for delivery after commit → :func:`webhook_deliver`
claims the row (compare-and-swap), POSTs it with a timeout **outside any transaction**,
and records the answer. The handlers of ``lead.*`` topics (which event names a stage
change means) are the leads app's (``leads/handlers.py``); the ``sequence.*`` ones are here.

Retries: timeouts, connection errors, 408/429 and 5xx are retried with exponential
backoff (``WEBHOOKS_RETRY_BASE_SECONDS`` · 2^(attempt-1), capped at an hour) until
``WEBHOOKS_RETRY_FOR_HOURS`` after the event; other 4xx are permanent failures.
Every failed attempt counts towards ``WEBHOOKS_DISABLE_AFTER_FAILURES`` failures in a
row, after which the subscription is disabled and admins get an email.

Signature: ``X-LeadFunnel-Signature = hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))``
with ``X-LeadFunnel-Timestamp`` (Unix seconds) and ``X-LeadFunnel-Event``.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .audit import audit_record
from .celery import app
from .errors import NotFound, ValidationFailed
from .models import Notification, WebhookDelivery, WebhookSubscription
from .notifications import admins, notification_create
from .outbox import outbox_handler

logger = logging.getLogger(__name__)

# Event names a subscription may ask for. Derived lead.* names are emitted alongside
# ``lead.stage_changed`` for the matching move.
EVENTS: dict[str, str] = {
    "lead.created": "A lead was created (form, API, import).",
    "lead.form_submitted": "A lead submitted a form.",
    "lead.stage_changed": "Any stage change.",
    "lead.mql": "A lead became an MQL.",
    "lead.pql": "A lead became a PQL.",
    "lead.sal_accepted": "A rep accepted an MQL/PQL (→ SAL).",
    "lead.sal_rejected": "A rep rejected an MQL/PQL (→ recycled).",
    "lead.sql": "A lead became an SQL.",
    "lead.customer": "An SQL was won.",
    "lead.lost": "An SQL was lost.",
    "lead.recycled": "A lead went back to nurturing.",
    "lead.disqualified": "A lead was disqualified.",
    "lead.erased": "A person's data was erased (delete your copies of it).",
    "sequence.goal_reached": "A nurture enrolment reached a goal.",
    "sequence.webhook": "A nurture sequence's webhook action step ran.",
}

RETRY_CAP = timedelta(hours=1)
RESPONSE_KEEP_CHARS = 2000
USER_AGENT = "LeadFunnel-Webhooks/1.0"

# The task that attempts one delivery (leadfunnel/tasks.py), queued by name.
DELIVER_TASK = "leadfunnel.tasks.webhooks_deliver"


class DeliveryRefused(Exception):
    """The URL now resolves somewhere we do not deliver to (private address)."""


# --- URL safety ----------------------------------------------------------------


def _is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def webhook_url_check(url: str) -> str | None:
    """``None`` if LeadFunnel may POST to ``url``, else a sentence saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The URL must be an absolute http:// or https:// URL."
    if parts.username or parts.password:
        return "The URL must not contain credentials; use the secret for authentication."
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return f"The host {parts.hostname!r} does not resolve."
    except ValueError:
        return "The URL's port is not valid."
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(_is_public_address(a) for a in addresses):
        return (
            f"The host {parts.hostname!r} resolves to a private, loopback or reserved address; "
            "webhooks may only go to public addresses (an admin can allow private ones with "
            "WEBHOOKS_ALLOW_PRIVATE_URLS)."
        )
    return None


def _validate(*, url: str, events: list[str]) -> None:
    errors: dict[str, list[str]] = {}
    problem = webhook_url_check(url)
    if problem:
        errors["url"] = [problem]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        errors["events"] = [f"Unknown event(s): {', '.join(unknown)}. Known: {', '.join(EVENTS)}."]
    elif not events:
        errors["events"] = ["Choose at least one event."]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(first, fields=errors)


# --- subscriptions ---------------------------------------------------------------


def webhook_create(
    *, url: str, secret: str, events: list[str], active: bool = True, description: str = "", actor=None
) -> WebhookSubscription:
    events = list(dict.fromkeys(events))
    _validate(url=url, events=events)
    subscription = WebhookSubscription.objects.create(
        url=url,
        secret=secret,
        events=events,
        active=active,
        description=description,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(actor=actor, action="webhook.created", obj=subscription, changes={"url": url, "events": events})
    return subscription


def webhook_update(*, subscription_id: int, actor=None, **changes) -> WebhookSubscription:
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).first()
        if subscription is None:
            raise NotFound("No such webhook subscription.")
        if "events" in changes:
            changes["events"] = list(dict.fromkeys(changes["events"]))
        if "url" in changes or "events" in changes:
            _validate(url=changes.get("url", subscription.url), events=changes.get("events", subscription.events))
        for field, value in changes.items():
            setattr(subscription, field, value)
        fields = list(changes)
        if changes.get("active") is True:
            # Re-enabled by an admin: start counting failures afresh.
            subscription.consecutive_failures = 0
            subscription.disabled_at = None
            subscription.disabled_reason = ""
            fields += ["consecutive_failures", "disabled_at", "disabled_reason"]
        subscription.save(update_fields=[*set(fields), "updated_at"])
        audit_record(
            actor=actor,
            action="webhook.updated",
            obj=subscription,
            changes={k: v for k, v in changes.items() if k != "secret"},
        )
    return subscription


def webhook_secret_new() -> str:
    """A fresh signing secret (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def webhook_rotate_secret(*, subscription_id: int, actor=None) -> tuple[WebhookSubscription, str]:
    """Give a subscription a new signing secret; answers it (shown once: only its use is stored
    in the audit log). Deliveries signed from now on use the new secret."""
    secret = webhook_secret_new()
    with transaction.atomic():
        updated = WebhookSubscription.objects.filter(pk=subscription_id).update(
            secret=secret, updated_at=timezone.now()
        )
        if not updated:
            raise NotFound("No such webhook subscription.")
        subscription = WebhookSubscription.objects.get(pk=subscription_id)
        audit_record(actor=actor, action="webhook.secret_rotated", obj=subscription, changes={})
    return subscription, secret


def webhook_delete(*, subscription_id: int, actor=None) -> None:
    deleted, _ = WebhookSubscription.objects.filter(pk=subscription_id).delete()
    if not deleted:
        raise NotFound("No such webhook subscription.")
    audit_record(
        actor=actor,
        action="webhook.deleted",
        object_type="leadfunnel.webhooksubscription",
        object_id=str(subscription_id),
    )


# --- queueing (DB-only, called by outbox handlers) ---------------------------------


def _kick(ids: list[int]) -> None:
    for delivery_id in ids:
        try:
            app.signature(DELIVER_TASK, args=[delivery_id]).apply_async(retry=False)
        except Exception as exc:  # broker down: the sweep delivers later
            logger.warning("broker unavailable, webhook delivery %s left for the sweep: %s", delivery_id, exc)
            return


def webhook_queue(*, events: list[str], data: dict, event_key: str) -> list[WebhookDelivery]:
    """Queue deliveries of ``data`` to every active subscription wanting one of ``events``.

    ``event_key`` identifies the happening (e.g. the transition id); together with the
    event name it makes the queueing idempotent per subscription.
    """
    return webhook_queue_many(items=[(events, data, event_key)])


def webhook_queue_many(*, items: list[tuple[list[str], dict, str]]) -> list[WebhookDelivery]:
    """:func:`webhook_queue` for many happenings ``(events, data, event_key)``: the subscriptions are
    read once, the deliveries written in one statement (none of it when nobody subscribes)."""
    if not items:
        return []
    now = timezone.now()
    wanted = {event for events, _, _ in items for event in events}
    subscriptions = [s for s in WebhookSubscription.objects.filter(active=True) if wanted & set(s.events)]
    rows = []
    for subscription in subscriptions:
        for events, data, event_key in items:
            for event in events:
                if event not in subscription.events:
                    continue
                rows.append(
                    WebhookDelivery(
                        subscription=subscription,
                        event=event,
                        dedupe_key=f"{event}:{event_key}"[:200],
                        payload={"event": event, "occurred_at": now.isoformat(), "data": data},
                        next_attempt_at=now,
                    )
                )
    if not rows:
        return []
    existing = set(
        WebhookDelivery.objects.filter(
            subscription__in=subscriptions, dedupe_key__in=[r.dedupe_key for r in rows]
        ).values_list("subscription_id", "dedupe_key")
    )
    fresh, seen = [], set()
    for row in rows:
        key = (row.subscription_id, row.dedupe_key)
        if key not in existing and key not in seen:
            seen.add(key)
            fresh.append(row)
    created = WebhookDelivery.objects.bulk_create(fresh)
    ids = [d.pk for d in created if d.pk is not None]
    if ids:
        transaction.on_commit(lambda: _kick(ids))
    return created


# Nurture sequences' events: the payload carries everything, so its hash identifies the happening.


def _payload_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:40]


@outbox_handler("sequence.goal_reached")
def webhooks_on_goal_reached(payload: dict) -> None:
    webhook_queue(events=["sequence.goal_reached"], data=payload, event_key=_payload_key(payload))


@outbox_handler("sequence.webhook")
def webhooks_on_sequence_webhook(payload: dict) -> None:
    webhook_queue(events=["sequence.webhook"], data=payload, event_key=_payload_key(payload))


# --- delivery (network I/O, never inside a transaction) ------------------------------


def webhook_sign(*, secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_body(delivery: WebhookDelivery) -> bytes:
    body = dict(delivery.payload)
    body["delivery_id"] = delivery.pk
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def _backoff(attempts: int) -> timedelta:
    seconds = settings.WEBHOOKS_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1))
    return min(timedelta(seconds=seconds), RETRY_CAP)


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    """POST once. Returns (status code or None, error text, response excerpt)."""
    subscription = delivery.subscription
    problem = webhook_url_check(subscription.url)
    if problem:
        raise DeliveryRefused(problem)
    body = webhook_body(delivery)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-LeadFunnel-Event": delivery.event,
        "X-LeadFunnel-Delivery": str(delivery.pk),
        "X-LeadFunnel-Timestamp": timestamp,
        "X-LeadFunnel-Signature": webhook_sign(secret=subscription.secret, timestamp=timestamp, body=body),
    }
    try:
        response = requests.post(
            subscription.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        return None, f"Timed out after {settings.WEBHOOKS_TIMEOUT_SECONDS} s.", ""
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000], ""
    return response.status_code, "", response.text[:RESPONSE_KEEP_CHARS]


def webhook_deliver(*, delivery_id: int) -> str | None:
    """Attempt one delivery if it is due and nobody else has it. Returns the new status."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
        next_attempt_at__lte=now,
        subscription__active=True,
    ).update(status=WebhookDelivery.Status.DELIVERING, claimed_at=now)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    started = time.monotonic()
    try:
        status_code, error, excerpt = _post(delivery)
        refused = False
    except DeliveryRefused as exc:
        status_code, error, excerpt, refused = None, str(exc), "", True
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(
        delivery, status_code=status_code, error=error, excerpt=excerpt, refused=refused, duration_ms=duration_ms
    )


def _record_attempt(
    delivery: WebhookDelivery, *, status_code: int | None, error: str, excerpt: str, refused: bool, duration_ms: int
) -> str:
    now = timezone.now()
    attempts = delivery.attempts + 1
    ok = status_code is not None and 200 <= status_code < 300
    retryable = not refused and (status_code is None or status_code >= 500 or status_code in (408, 429))
    if ok:
        status, next_at = WebhookDelivery.Status.SUCCEEDED, None
    elif retryable and now + _backoff(attempts) <= delivery.created_at + timedelta(
        hours=settings.WEBHOOKS_RETRY_FOR_HOURS
    ):
        status, next_at = WebhookDelivery.Status.RETRYING, now + _backoff(attempts)
    else:
        status, next_at = WebhookDelivery.Status.FAILED, None
    if status_code is not None and not ok and not error:
        error = f"HTTP {status_code}"
    log = [
        *delivery.attempt_log,
        {"at": now.isoformat(), "status_code": status_code, "error": error[:500], "duration_ms": duration_ms},
    ][-50:]
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status,
            attempts=attempts,
            next_attempt_at=next_at,
            claimed_at=None,
            last_attempt_at=now,
            delivered_at=now if ok else None,
            last_status_code=status_code,
            last_error=error,
            last_response_body=excerpt,
            attempt_log=log,
        )
        subscription_id = delivery.subscription_id
        if ok:
            WebhookSubscription.objects.filter(pk=subscription_id, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
        else:
            WebhookSubscription.objects.filter(pk=subscription_id).update(
                consecutive_failures=F("consecutive_failures") + 1
            )
            _disable_if_failing(subscription_id, now=now)
    return status


def _disable_if_failing(subscription_id: int, *, now) -> None:
    limit = settings.WEBHOOKS_DISABLE_AFTER_FAILURES
    # Compare-and-swap: exactly one attempt disables it and sends the notice.
    disabled = WebhookSubscription.objects.filter(
        pk=subscription_id, active=True, consecutive_failures__gte=limit
    ).update(
        active=False,
        disabled_at=now,
        disabled_reason=f"Disabled automatically after {limit} failed deliveries in a row.",
        updated_at=now,
    )
    if not disabled:
        return
    subscription = WebhookSubscription.objects.get(pk=subscription_id)
    notification_create(
        recipients=admins(),
        kind=Notification.Kind.WEBHOOK_DISABLED,
        subject=f"Webhook disabled: {subscription.url}",
        body=(
            f"The webhook subscription {subscription.pk} ({subscription.url}) failed {limit} deliveries in a row "
            "and has been disabled. Pending deliveries are kept; fix the receiver and re-enable it "
            f'(PATCH /api/v1/webhooks/{subscription.pk}/ {{"active": true}}), then redeliver what failed.\n\n'
            f"Last error: see {settings.SITE_URL}/api/v1/webhooks/{subscription.pk}/deliveries/\n"
        ),
        dedupe_key=f"webhook_disabled:{subscription.pk}:{now.isoformat()}",
    )


def webhook_redeliver(*, delivery_id: int, actor=None) -> WebhookDelivery:
    """Queue a fresh copy of a delivery (any status); the original stays in the log."""
    original = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if original is None:
        raise NotFound("No such webhook delivery.")
    if not original.subscription.active:
        raise ValidationFailed("This webhook subscription is disabled; re-enable it before redelivering.")
    now = timezone.now()
    with transaction.atomic():
        copy = WebhookDelivery.objects.create(
            subscription=original.subscription,
            event=original.event,
            dedupe_key=f"redelivery:{original.pk}:{now.timestamp()}"[:200],
            payload=original.payload,
            next_attempt_at=now,
            redelivery_of=original,
        )
        transaction.on_commit(lambda: _kick([copy.pk]))
    return copy


def webhooks_due_ids(*, limit: int = 500) -> list[int]:
    """Deliveries whose (next) attempt is due, and claims left behind by a dead worker."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS + 300)
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERING, claimed_at__lt=stale).update(
        status=WebhookDelivery.Status.RETRYING, claimed_at=None, next_attempt_at=now
    )
    return list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookDelivery.Status.PENDING) | Q(status=WebhookDelivery.Status.RETRYING),
            next_attempt_at__lte=now,
            subscription__active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )

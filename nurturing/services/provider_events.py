"""Email provider tracking events (through django-anymail's webhooks): delivered, bounced (hard
and soft), complained, opened, clicked, unsubscribed.

Each event is recorded once (the provider's event id, :class:`ProviderEvent`), on the message we
sent (matched by the provider's message id stored at send time, else by the recipient's address)
and its lead, as an interaction — so scoring, the timeline and the sequences' goals see it — and
feeds the suppression list: a hard bounce, a complaint or an unsubscribe suppresses the address;
three soft bounces in a row (from three different messages) count as a hard bounce; a delivery or
an open ends the run.
"""

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from leads.models import InteractionType, Lead
from leads.services import interaction_record
from leads.services.consent import leads_consent_withdraw
from leads.services.suppression import suppression_add

from ..models import Message, ProviderEvent, SoftBounceRun
from .tracking import message_mark_clicked, message_mark_opened

logger = logging.getLogger(__name__)

SOFT_BOUNCES_MAKE_HARD = 3

# anymail's normalised event types → what LeadFunnel records. Others (queued, sent, rejected,
# failed, autoresponded, subscribed, unknown) are acknowledged and ignored.
KINDS = {
    "delivered": "delivered",
    "opened": "open",
    "clicked": "click",
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
    "bounced": "bounce",
    "deferred": "soft_bounce",
}
INTERACTION_FOR = {
    "delivered": InteractionType.EMAIL_DELIVERED,
    "open": InteractionType.EMAIL_OPEN,
    "click": InteractionType.EMAIL_CLICK,
    "complaint": InteractionType.EMAIL_COMPLAINT,
    "unsubscribe": InteractionType.UNSUBSCRIBE,
    "bounce": InteractionType.EMAIL_BOUNCE,
    "soft_bounce": InteractionType.EMAIL_SOFT_BOUNCE,
}
SUPPRESS_FOR = {"bounce": "hard_bounce", "complaint": "complaint", "unsubscribe": "unsubscribed"}


@dataclass(frozen=True)
class TrackingEvent:
    """One provider event, as anymail normalised it (see ``nurturing.provider_webhooks``)."""

    esp: str
    event_type: str
    event_id: str | None = None
    message_id: str | None = None
    recipient: str | None = None
    occurred_at: datetime | None = None
    # A bounce the provider reports as temporary (Postmark's SoftBounce, SendGrid's "blocked").
    soft: bool = False
    reason: str = ""
    click_url: str | None = None
    extra: dict = field(default_factory=dict)


def _address_hash(email: str) -> str:
    key = hashlib.sha256(f"leadfunnel-soft-bounces:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def _event_key(event: TrackingEvent) -> str:
    if event.event_id:
        return str(event.event_id)[:200]
    # Providers without an event id: the event's own facts make it unique enough to drop re-posts.
    raw = "|".join(
        str(part or "")
        for part in (event.event_type, event.message_id, event.recipient, event.occurred_at, event.click_url)
    )
    return "h:" + hashlib.sha256(raw.encode()).hexdigest()


def _kind(event: TrackingEvent) -> str | None:
    kind = KINDS.get(event.event_type)
    if kind == "bounce" and event.soft:
        return "soft_bounce"
    return kind


def _soft_bounce(address: str, message_key: str, now: datetime) -> int:
    """Count a soft bounce for the address (once per message); the run's length after it."""
    run, _ = SoftBounceRun.objects.select_for_update().get_or_create(email_hash=_address_hash(address))
    if message_key and run.last_message_key == message_key:
        return run.count  # the provider's retries of one message are one soft bounce
    run.count += 1
    run.last_message_key = message_key[:255]
    run.updated_at = now
    run.save(update_fields=["count", "last_message_key", "updated_at"])
    return run.count


def _run_reset(address: str) -> None:
    SoftBounceRun.objects.filter(email_hash=_address_hash(address)).delete()


@transaction.atomic
def provider_event_record(*, event: TrackingEvent) -> str:
    """Record one provider tracking event. Returns what was done: the kind recorded, ``duplicate``
    (this event id was seen already: nothing changes), or ``ignored``."""
    kind = _kind(event)
    if kind is None:
        return "ignored"
    now = timezone.now()
    occurred_at = event.occurred_at or now
    message = None
    if event.message_id:
        message = (
            Message.objects.select_related("lead")
            .filter(provider_message_id=str(event.message_id))
            .order_by("-pk")
            .first()
        )
    address = (message.to if message is not None else (event.recipient or "")).strip().lower()
    lead = message.lead if message is not None else Lead.objects.filter(email=address).first() if address else None
    try:
        with transaction.atomic():
            ProviderEvent.objects.create(
                esp=event.esp[:40],
                event_id=_event_key(event),
                kind=kind,
                message=message,
                lead=lead,
                occurred_at=occurred_at,
                received_at=now,
            )
    except IntegrityError:
        return "duplicate"

    properties: dict = {"esp": event.esp, "provider_event": kind}
    if message is not None:
        properties.update(message_id=message.pk, sequence_id=message.sequence_id, step=message.position)
    if event.reason:
        properties["reason"] = event.reason[:500]
    if kind == "soft_bounce" and address:
        run = _soft_bounce(address, str(event.message_id or ""), now)
        properties["soft_bounces_in_a_row"] = run
        if run >= SOFT_BOUNCES_MAKE_HARD:
            kind = "bounce"  # three in a row: the address is treated as dead
    if kind in ("delivered", "open", "click", "bounce") and address:
        _run_reset(address)
    if kind in SUPPRESS_FOR and address:
        suppression_add(emails=[address], reason=SUPPRESS_FOR[kind])
    if lead is None:
        return kind
    if kind in ("complaint", "unsubscribe"):
        leads_consent_withdraw(lead_ids=[lead.pk], source=f"esp:{event.esp.lower()}:{kind}", at=occurred_at)
    if kind == "open" and message is not None and not message_mark_opened(message_id=message.pk, at=occurred_at):
        return kind  # opens after the first (pixel or provider) are not recorded again
    if kind == "click":
        if event.click_url:
            properties["url"] = event.click_url[:2000]
        if message is not None:
            message_mark_clicked(message_id=message.pk, at=occurred_at)
    interaction_record(
        type=INTERACTION_FOR[kind],
        lead=lead.pk,
        occurred_at=occurred_at,
        properties=properties,
        source=f"esp:{event.esp.lower()}"[:100],
        external_id=_event_key(event),
    )
    return kind

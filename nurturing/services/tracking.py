"""What tracking links record: opens, clicks, unsubscribes."""

from datetime import datetime

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.models import Lead, SuppressionReason
from leads.services import suppression_add
from leads.services.consent import leads_consent_withdraw

from ..models import ExitReason, Message
from .enrollment import enrollments_exit
from .interactions import interaction_record_one


def message_mark_opened(*, message_id: int, at: datetime) -> bool:
    """Stamp the message's first open; False when it was opened already (pixel or provider)."""
    return bool(Message.objects.filter(pk=message_id, opened_at__isnull=True).update(opened_at=at))


def message_mark_clicked(*, message_id: int, at: datetime) -> None:
    """Stamp the message's first click and the open a click implies, in one UPDATE."""
    Message.objects.filter(Q(clicked_at__isnull=True) | Q(opened_at__isnull=True), pk=message_id).update(
        clicked_at=Coalesce("clicked_at", Value(at)), opened_at=Coalesce("opened_at", Value(at))
    )


def _properties(message: Message) -> dict:
    return {"sequence_id": message.sequence_id, "step": message.position, "message_id": message.pk}


@transaction.atomic
def message_record_open(*, message: Message) -> bool:
    """The first open of a message is recorded (pixels get re-fetched by mail clients)."""
    now = timezone.now()
    if not message_mark_opened(message_id=message.pk, at=now):
        return False
    interaction_record_one(lead=message.lead, type="email_open", properties=_properties(message), occurred_at=now)
    return True


@transaction.atomic
def message_record_click(*, message: Message, index: int) -> None:
    now = timezone.now()
    message_mark_clicked(message_id=message.pk, at=now)
    interaction_record_one(
        lead=message.lead,
        type="email_click",
        properties={**_properties(message), "url": message.links[index], "link": index},
        occurred_at=now,
    )


@transaction.atomic
def lead_unsubscribe(*, lead: Lead, message: Message | None = None) -> bool:
    """One-click unsubscribe: stop all nurturing to this lead, withdraw its consent. Safe to repeat.

    The address goes on the suppression list every time (even when the lead row already says
    unsubscribed, e.g. after an admin took it off the list), so no re-import re-enables sending."""
    now = timezone.now()
    addresses = {lead.email} | ({message.to} if message is not None and message.channel == "email" else set())
    suppression_add(emails=sorted(addresses), reason=SuppressionReason.UNSUBSCRIBED)
    if not Lead.objects.filter(pk=lead.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now):
        return False
    leads_consent_withdraw(lead_ids=[lead.pk], source="unsubscribe_link", at=now)
    lead.unsubscribed_at = now
    interaction_record_one(
        lead=lead, type="unsubscribe", properties=_properties(message) if message else {}, occurred_at=now
    )
    enrollments_exit(lead_ids=[lead.pk], reason=ExitReason.UNSUBSCRIBED, now=now)
    return True

"""Interactions in: one event or a thousand, stored, flagged on the lead and scored set-based."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from leadfunnel.errors import Conflict, ValidationFailed
from leadfunnel.outbox import outbox_publish_many
from leadfunnel.validation import integer_range

from .. import intake, sql
from ..models import Channel, Interaction, InteractionKey, InteractionType, Lead, Stage, TransitionCause
from .funnel import Entered, Entry, emails_resolve_aliases, leads_enter_funnel
from .qualification import leads_score, scores_drain_soon, scoring_deferred
from .suppression import suppression_add

# Interactions we send rather than the lead does: they do not count as the lead's activity.
OUTBOUND_TYPES = frozenset(
    {
        InteractionType.EMAIL_SENT,
        InteractionType.SMS_SENT,
        InteractionType.EMAIL_DELIVERED,
        InteractionType.MESSAGE_SKIPPED,
    }
)
# Not something the lead did: it does not move the lead's last activity.
_NOT_LEAD_ACTIVITY = OUTBOUND_TYPES | {InteractionType.NOTE}
INTERACTION_TYPES = frozenset(InteractionType.values)
# A spam complaint stops our mail like an unsubscribe does.
UNSUBSCRIBE_TYPES = frozenset({InteractionType.UNSUBSCRIBE, InteractionType.EMAIL_COMPLAINT})
MAX_BULK_EVENTS = 1000
MAX_PROPERTIES_SIZE = 16_000
# The largest id the leads' id column holds on the database in use.
LEAD_ID_MAX = integer_range(Lead._meta.pk)[1] or 2**63 - 1
# How far in the future an event's occurred_at may be (clock skew of the sender).
MAX_FUTURE_SKEW = timedelta(days=1)


def unknown_email_policy() -> str:
    """LEADFUNNEL_UNKNOWN_EMAIL_EVENTS: "create" a visitor for an event's unknown email, or "reject" the event."""
    return getattr(settings, "LEADFUNNEL_UNKNOWN_EMAIL_EVENTS", "create")


@dataclass
class CleanEvent:
    type: str
    occurred_at: datetime
    properties: dict
    lead_id: int | None = None
    email: str | None = None
    source: str = ""
    external_id: str | None = None

    def interaction(self, *, lead_id: int, received_at: datetime) -> Interaction:
        """The unsaved interaction row of this event for its lead."""
        return Interaction(
            lead_id=lead_id,
            type=self.type,
            occurred_at=self.occurred_at,
            received_at=received_at,
            properties=self.properties,
            source=self.source,
            external_id=self.external_id,
        )


def event_clean(item: Any, *, default_source: str = "api", now: datetime | None = None) -> CleanEvent:
    """Validate one event (``{"lead"|"email", "type", "occurred_at", "properties", "source", "external_id"}``).

    Plain Python on purpose: the bulk endpoint validates 1,000 of these per request.
    Raises ValueError with a message naming the field.
    """
    if not isinstance(item, dict):
        raise ValueError("Each event must be a JSON object.")
    event_type = item.get("type")
    if not isinstance(event_type, str) or event_type not in INTERACTION_TYPES:
        raise ValueError(f"type: {event_type!r} is not a known interaction type.")
    lead_id = item.get("lead")
    email = item.get("email")
    if lead_id is not None:
        if isinstance(lead_id, bool) or not isinstance(lead_id, int) or lead_id <= 0:
            if isinstance(lead_id, str) and lead_id.isdigit():
                lead_id = int(lead_id)
            else:
                raise ValueError("lead: Must be a lead id (a positive integer).")
        if lead_id > LEAD_ID_MAX:
            raise ValueError(f"lead: Must be a lead id (at most {LEAD_ID_MAX}).")
    elif email is not None:
        try:
            email = intake.normalise_email(email)
        except ValidationFailed as exc:
            raise ValueError(exc.message) from None
    else:
        raise ValueError("Give the lead's id (lead) or its email.")
    now = now or timezone.now()
    occurred = item.get("occurred_at")
    occurred_at = now if occurred in (None, "") else intake.parse_datetime_value(occurred)
    if occurred_at > now + MAX_FUTURE_SKEW:
        raise ValueError("occurred_at: Must not be in the future.")
    properties = item.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ValueError("properties: Must be a JSON object.")
    properties = intake.scrub(properties)
    if len(str(properties)) > MAX_PROPERTIES_SIZE:
        raise ValueError(f"properties: At most {MAX_PROPERTIES_SIZE} characters.")
    source = item.get("source") or default_source
    external_id = item.get("external_id")
    if not isinstance(source, str) or len(source) > 100:
        raise ValueError("source: Must be text of at most 100 characters.")
    if external_id is not None:
        if isinstance(external_id, bool) or not isinstance(external_id, (str, int)) or len(str(external_id)) > 200:
            raise ValueError("external_id: Must be text of at most 200 characters.")
        external_id = str(external_id)
    return CleanEvent(
        type=event_type,
        occurred_at=occurred_at,
        properties=properties,
        lead_id=lead_id if isinstance(lead_id, int) else None,
        email=email if lead_id is None else None,
        source=source.replace("\x00", ""),
        external_id=external_id,
    )


def _lead_flag_updates(events: list[tuple[int, str, datetime]]) -> dict[int, dict[str, datetime]]:
    """Per lead: latest activity, first unsubscribe and first bounce among new events."""
    per_lead: dict[int, dict[str, datetime]] = {}
    for lead_id, event_type, at in events:
        entry = per_lead.setdefault(lead_id, {})
        if event_type not in _NOT_LEAD_ACTIVITY and at > entry.get("last_activity_at", at - timedelta(seconds=1)):
            entry["last_activity_at"] = at
        if event_type in UNSUBSCRIBE_TYPES and at < entry.get("unsubscribed_at", at + timedelta(seconds=1)):
            entry["unsubscribed_at"] = at
        if event_type == InteractionType.EMAIL_BOUNCE and at < entry.get("email_bounced_at", at + timedelta(seconds=1)):
            entry["email_bounced_at"] = at
    return per_lead


# Events that put the lead's address on the suppression list, with the list's reason.
_SUPPRESSING = {InteractionType.UNSUBSCRIBE: "unsubscribed", InteractionType.EMAIL_BOUNCE: "hard_bounce"}


def _suppress(by_reason: dict[str, set[str]]) -> None:
    """Unsubscribes and bounces list the address, whatever later happens to the lead row
    (re-imports, edits, an erasure). Nothing to do, no query, for a batch without them."""
    for reason, emails in sorted(by_reason.items()):
        if emails:
            suppression_add(emails=sorted(emails), reason=reason)


def _suppressing_events(events: list[tuple[int, str]]) -> dict[str, set[int]]:
    """{suppression reason: lead ids} of the unsubscribe and bounce events among (lead id, type)."""
    found: dict[str, set[int]] = {}
    for lead_id, event_type in events:
        if event_type in _SUPPRESSING:
            found.setdefault(_SUPPRESSING[event_type], set()).add(lead_id)
    return found


def _enter_unknown(emails: set[str], *, source: str, now: datetime, resolve_aliases: bool = True) -> Entered:
    """Visitors for events whose email no lead has (LEADFUNNEL_UNKNOWN_EMAIL_EVENTS=create), and
    the leads that have them, locked."""
    return leads_enter_funnel(
        entries=[
            Entry(
                lead=Lead(
                    email=email,
                    source=source[:100],
                    channel=Channel.INTERACTION,
                    stage=Stage.VISITOR,
                    stage_changed_at=now,
                    created_at=now,
                    updated_at=now,
                ),
                cause=TransitionCause.API,
                cause_ref=f"interactions:{source}",
                reason="Created by an interaction for an unknown email",
            )
            for email in emails
        ],
        touch=False,
        resolve_aliases=resolve_aliases,
    )


def _email_leads(emails: set[str], *, source: str, now: datetime) -> tuple[dict[str, int], list[int]]:
    """Visitors for emails no lead had a moment ago (a concurrent writer's new lead is found and
    locked instead). Returns ({email: lead id}, ids of the leads created here)."""
    entered = _enter_unknown(emails, source=source, now=now, resolve_aliases=False)  # the batch resolved them
    return {email: lead.pk for email, lead in entered.leads.items()}, sorted(entered.created)


def _unknown_email_error(email: str) -> str:
    return f"No lead has the email {email} (unknown emails are rejected: LEADFUNNEL_UNKNOWN_EMAIL_EVENTS=reject)."


@transaction.atomic
def interaction_record(
    *,
    type: str,
    lead: Lead | int | None = None,
    email: str | None = None,
    occurred_at: datetime | str | None = None,
    properties: dict | None = None,
    source: str = "api",
    external_id: str | None = None,
) -> tuple[Interaction, bool]:
    """Record one interaction, update the lead's flags and score it. Returns (interaction, created).

    An event whose (source, external_id) was already recorded returns the stored one
    (created False) and changes nothing. The query count does not depend on the
    lead's history.
    """
    item = {
        "type": type,
        "lead": lead.pk if isinstance(lead, Lead) else lead,
        "email": email,
        "occurred_at": occurred_at.isoformat() if isinstance(occurred_at, datetime) else occurred_at,
        "properties": properties,
        "source": source,
        "external_id": external_id,
    }
    now = timezone.now()
    try:
        event = event_clean(item, default_source=source or "api", now=now)
    except ValueError as exc:
        field_name = str(exc).split(":")[0] if ":" in str(exc) else "non_field_errors"
        raise ValidationFailed(str(exc), fields={field_name: [str(exc)]}) from None

    if event.lead_id is not None:
        locked = Lead.objects.select_for_update().filter(pk=event.lead_id).first()
        if locked is None:
            raise ValidationFailed(f"lead: No lead with id {event.lead_id}.", fields={"lead": ["Unknown lead."]})
        if locked.erased_at is not None:
            raise Conflict("This lead's data was erased: it takes no new events.", code="lead_erased")
    elif unknown_email_policy() == "create":
        locked = _enter_unknown({event.email}, source=event.source, now=now).leads[event.email]
    else:
        email = emails_resolve_aliases({event.email}).get(event.email, event.email)
        locked = Lead.objects.select_for_update().filter(email=email).first()
        if locked is None:
            message = _unknown_email_error(event.email)
            raise ValidationFailed(message, fields={"email": [message]})

    interaction = event.interaction(lead_id=locked.pk, received_at=now)
    interaction.lead = locked
    if event.external_id is not None:
        try:
            with transaction.atomic():
                interaction.save(force_insert=True)
                InteractionKey.objects.create(
                    source=event.source, external_id=event.external_id, interaction_id=interaction.pk
                )
        except IntegrityError:
            key = InteractionKey.objects.get(source=event.source, external_id=event.external_id)
            return Interaction.objects.get(pk=key.interaction_id), False
    else:
        interaction.save(force_insert=True)

    flags = _lead_flag_updates([(locked.pk, event.type, event.occurred_at)])
    sql.lead_flags_apply(flags)
    if event.type in _SUPPRESSING:
        _suppress({_SUPPRESSING[event.type]: {locked.email}})
    for name, value in flags.get(locked.pk, {}).items():
        current = getattr(locked, name)
        if current is None or (name == "last_activity_at" and current < value):
            setattr(locked, name, value)
    outbox_publish_many(messages=[("interactions.recorded", {"lead_ids": [locked.pk], "types": [event.type]})])
    leads_score(interactions=[interaction], caller_leads={locked.pk: locked})
    return interaction, True


@dataclass
class BulkResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict] = field(default_factory=list)
    created_lead_ids: list[int] = field(default_factory=list)


def interactions_record_bulk(*, events: list, source: str = "api") -> BulkResult:
    """Record up to 1,000 events at once, set-based: a handful of queries whatever the size.

    Bad events are reported per index (``{"index", "error"}``) and do not sink the
    rest. Unknown emails make visitors (or errors, per LEADFUNNEL_UNKNOWN_EMAIL_EVENTS).
    Scoring runs once for the batch; one ``interactions.recorded`` message is published.
    """
    if not isinstance(events, list):
        raise ValidationFailed("events: Must be a list of events.", fields={"events": ["Must be a list."]})
    if len(events) > MAX_BULK_EVENTS:
        raise ValidationFailed(
            f"events: At most {MAX_BULK_EVENTS} events per request (got {len(events)}).",
            fields={"events": [f"At most {MAX_BULK_EVENTS} events."]},
        )
    result = BulkResult()
    now = timezone.now()
    valid: list[tuple[int, CleanEvent]] = []
    for index, item in enumerate(events):
        try:
            valid.append((index, event_clean(item, default_source=source or "api", now=now)))
        except ValueError as exc:
            result.errors.append({"index": index, "error": str(exc)})
    if not valid:
        return result

    with transaction.atomic():
        ids = {e.lead_id for _, e in valid if e.lead_id is not None}
        emails = {e.email for _, e in valid if e.email is not None}
        # Every stored lead of the batch, by id or by email, locked in one statement in id order (as
        # every writer of many leads, the scoring worker included, locks them): no deadlocks.
        # An erased lead takes no new events: it reads as unknown here.
        aliases = emails_resolve_aliases(emails)  # a merged lead's email counts as its survivor's
        wanted = (emails - set(aliases)) | set(aliases.values())
        by_email = dict(Lead.objects.filter(email__in=wanted).values_list("email", "pk")) if wanted else {}
        by_email.update({alias: by_email[target] for alias, target in aliases.items() if target in by_email})
        locked = set(
            Lead.objects.select_for_update()
            .filter(pk__in=ids | set(by_email.values()), erased_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        known_ids = ids & locked
        by_email = {email: pk for email, pk in by_email.items() if pk in locked}
        created_ids: list[int] = []
        missing = emails - set(by_email)
        if missing and unknown_email_policy() == "create":
            created, created_ids = _email_leads(missing, source=source or "api", now=now)
            by_email.update(created)
        result.created_lead_ids = created_ids

        external = {(e.source, e.external_id) for _, e in valid if e.external_id is not None}
        seen: set[tuple[str, str]] = set()
        if external:
            q = Q()
            for src, ext in external:
                q |= Q(source=src, external_id=ext)
            seen = set(InteractionKey.objects.filter(q).values_list("source", "external_id"))

        rows: list[Interaction] = []
        for index, event in valid:
            if event.lead_id is not None:
                lead_id = event.lead_id if event.lead_id in known_ids else None
                if lead_id is None:
                    result.errors.append({"index": index, "error": f"lead: No lead with id {event.lead_id}."})
                    continue
            else:
                lead_id = by_email.get(event.email)
                if lead_id is None:
                    result.errors.append({"index": index, "error": _unknown_email_error(event.email)})
                    continue
            if event.external_id is not None:
                ext_key = (event.source, event.external_id)
                if ext_key in seen:
                    result.duplicates += 1
                    continue
                seen.add(ext_key)
            rows.append(event.interaction(lead_id=lead_id, received_at=now))
        result.errors.sort(key=lambda e: e["index"])
        if rows:
            deferred = scoring_deferred()
            sql.interactions_insert(rows, queue_scoring=deferred)
            # An event id a concurrent request recorded first makes this copy a duplicate.
            lost = sql.interaction_keys_insert(
                [(r.source, r.external_id, r.pk) for r in rows if r.external_id is not None]
            )
            if lost:
                result.duplicates += len(lost)
                rows = [r for r in rows if r.pk not in lost]
            sql.lead_flags_apply(_lead_flag_updates([(r.lead_id, r.type, r.occurred_at) for r in rows]))
            suppressing = _suppressing_events([(r.lead_id, r.type) for r in rows])
            if suppressing:
                emails = dict(Lead.objects.filter(pk__in=set().union(*suppressing.values())).values_list("pk", "email"))
                _suppress({reason: {emails[pk] for pk in found} for reason, found in suppressing.items()})
            if deferred:
                scores_drain_soon()  # the same scoring, in a worker's batch after commit
            else:
                leads_score(interactions=rows)
        result.accepted = len(rows)
        messages: list[tuple[str, dict]] = []
        if rows:
            messages.append(
                (
                    "interactions.recorded",
                    {
                        "lead_ids": sorted({r.lead_id for r in rows}),
                        "types": sorted({r.type for r in rows}),
                    },
                )
            )
        outbox_publish_many(messages=messages)
    return result

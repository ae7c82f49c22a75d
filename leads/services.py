"""Writes on leads: the one stage-change service and the routing it triggers.

Every stage change in LeadFunnel goes through :func:`lead_change_stage`: it
locks the lead row, checks the move against :mod:`leads.funnel`, writes a
:class:`StageTransition` and publishes ``lead.stage_changed`` to the outbox
(delivered after commit: webhooks, notifications, nurture enrol/exit). The one
exception is scoring's promotion of many leads into MQL/PQL at once,
:func:`leads.promotion.leads_promote_many`, which records the same for each lead.
"""

import ipaddress
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from leadfunnel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from leadfunnel.outbox import outbox_publish, outbox_publish_many
from leadfunnel.roles import is_admin, is_marketer, is_sales

from . import intake
from .funnel import AWAITING_SALES, MARKETING_OWNED, can_move, explain_illegal
from .models import (
    Channel,
    Company,
    Form,
    FormSubmission,
    Interaction,
    InteractionType,
    Lead,
    LossReason,
    Opportunity,
    RejectionReason,
    SalesRepProfile,
    Stage,
    StageTransition,
    TransitionCause,
)

logger = logging.getLogger(__name__)

DEFAULT_SLA_HOURS = 24


class IllegalTransition(Conflict):
    code = "illegal_transition"


def current_sla_hours() -> int:
    try:
        from scoring.selectors import scoring_settings_get
    except ImportError:
        return DEFAULT_SLA_HOURS
    return scoring_settings_get().sla_hours


def rep_queue(*, exclude_user_ids: tuple[int, ...] = ()):
    """The active sales reps who are not away, in round-robin order (assigned longest ago, or
    never, first), each annotated with ``open_count`` (leads waiting for the rep, MQL/PQL) and
    ``capacity`` (None: no routing profile yet, so no limit)."""
    user_model = get_user_model()
    return (
        user_model.objects.filter(is_active=True, groups__name="sales")
        .exclude(pk__in=exclude_user_ids)
        .exclude(rep_profile__is_away=True)
        .annotate(
            # A correlated count over the queue index (owner, stage, sla_due_at) touches only
            # the rep's waiting leads, not every lead the rep ever owned.
            open_count=Coalesce(
                Subquery(
                    Lead.objects.filter(owner=OuterRef("pk"), stage__in=list(AWAITING_SALES))
                    .order_by()
                    .values("owner")
                    .annotate(n=Count("pk"))
                    .values("n")[:1]
                ),
                0,
            ),
            capacity=F("rep_profile__capacity"),
        )
        .order_by(F("rep_profile__last_assigned_at").asc(nulls_first=True), "pk")
    )


def rep_pick_next(*, exclude_user_ids: tuple[int, ...] = ()) -> "object | None":
    """Round-robin among active sales reps who are not away and below capacity.

    The rep assigned longest ago (or never) goes first. Capacity counts the
    leads currently waiting for the rep (MQL/PQL).
    """
    # One query for all reps (capacity comes with them), not one more per rep.
    for rep in rep_queue(exclude_user_ids=exclude_user_ids):
        if rep.capacity is None or rep.open_count < rep.capacity:
            return rep
    return None


def _assign(lead: Lead, *, now, rep=None) -> None:
    rep = rep or rep_pick_next()
    lead.owner = rep
    lead.assigned_at = now if rep else None
    lead.sla_due_at = now + timedelta(hours=current_sla_hours()) if rep else None
    lead.sla_breached_at = None
    lead.sla_escalated_at = None
    lead.first_response_at = None
    if rep is not None:
        SalesRepProfile.objects.update_or_create(user=rep, defaults={"last_assigned_at": now})


def stage_changed_payload(transition: StageTransition) -> dict:
    """The ``lead.stage_changed`` outbox message for a recorded move (webhooks, notifications,
    nurture enrol/exit read it)."""
    return {
        "lead_id": transition.lead_id,
        "transition_id": transition.pk,
        "from": transition.from_stage,
        "to": transition.to_stage,
        "cause": transition.cause,
        "cause_ref": transition.cause_ref,
        "owner_id": transition.owner_id,
        "cycle": transition.cycle,
        "at": transition.at.isoformat(),
    }


@transaction.atomic
def lead_change_stage(
    *,
    lead: Lead | int,
    to_stage: str,
    cause: str = TransitionCause.SYSTEM,
    actor=None,
    cause_ref: str = "",
    reason: str = "",
    reason_code: str = "",
    details: dict | None = None,
    expected_from: tuple[str, ...] | None = None,
    owner=None,
) -> StageTransition:
    """Move a lead to ``to_stage``. Raises :class:`IllegalTransition` (409) for illegal moves.

    ``expected_from`` narrows the legal origins further (e.g. ``accept`` only
    from MQL/PQL). ``owner`` assigns a specific rep when entering MQL/PQL
    (default: round-robin). The lead row is locked for the duration, so two
    concurrent moves of one lead are serialised and the second one sees the
    first one's result.
    """
    lead_id = lead if isinstance(lead, int) else lead.pk
    locked = Lead.objects.select_for_update().get(pk=lead_id)
    from_stage = locked.stage
    if expected_from is not None and from_stage not in expected_from:
        raise IllegalTransition(
            explain_illegal(from_stage, to_stage)
            if not can_move(from_stage, to_stage)
            else f"This lead is {Stage(from_stage).label}, not {' or '.join(Stage(s).label for s in expected_from)}."
        )
    if not can_move(from_stage, to_stage):
        raise IllegalTransition(explain_illegal(from_stage, to_stage))

    now = timezone.now()
    update_fields = ["stage", "stage_changed_at", "updated_at"]
    if to_stage in AWAITING_SALES:
        if from_stage in (Stage.RECYCLED, Stage.LOST):
            locked.cycle += 1
            update_fields.append("cycle")
        _assign(locked, now=now, rep=owner)
        update_fields += [
            "owner",
            "assigned_at",
            "sla_due_at",
            "sla_breached_at",
            "sla_escalated_at",
            "first_response_at",
        ]
    elif from_stage in AWAITING_SALES and to_stage in (Stage.SAL, Stage.RECYCLED, Stage.DISQUALIFIED):
        locked.first_response_at = now
        locked.sla_due_at = None
        update_fields += ["first_response_at", "sla_due_at"]
    if to_stage in MARKETING_OWNED or to_stage == Stage.DISQUALIFIED:
        # Back to marketing (or out): no rep owns it any more.
        locked.owner = None
        locked.sla_due_at = None
        update_fields += ["owner", "sla_due_at"]

    locked.stage = to_stage
    locked.stage_changed_at = now
    locked.save(update_fields=sorted(set(update_fields)))

    transition = StageTransition.objects.create(
        lead=locked,
        from_stage=from_stage,
        to_stage=to_stage,
        at=now,
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        cause=cause,
        cause_ref=cause_ref,
        reason=reason,
        reason_code=reason_code,
        cycle=locked.cycle,
        owner=locked.owner,
        details=details or {},
    )
    outbox_publish(topic="lead.stage_changed", payload=stage_changed_payload(transition))
    if not isinstance(lead, int):
        # Keep the caller's instance truthful.
        for field in (
            "stage",
            "stage_changed_at",
            "cycle",
            "owner_id",
            "assigned_at",
            "sla_due_at",
            "sla_breached_at",
            "sla_escalated_at",
            "first_response_at",
        ):
            setattr(lead, field, getattr(locked, field))
    return transition


# ---------------------------------------------------------------------------
# Intake, profile writes, interactions and the sales workflow.
# ---------------------------------------------------------------------------

# Interactions we send rather than the lead does: they do not count as the lead's activity.
OUTBOUND_TYPES = frozenset({InteractionType.EMAIL_SENT, InteractionType.SMS_SENT})
INTERACTION_TYPES = frozenset(InteractionType.values)
MAX_BULK_EVENTS = 1000
MAX_PROPERTIES_SIZE = 16_000
# How far in the future an event's occurred_at may be (clock skew of the sender).
MAX_FUTURE_SKEW = timedelta(days=1)


def _scoring():
    from scoring import services as scoring_services

    return scoring_services


def unknown_email_policy() -> str:
    """LEADFUNNEL_UNKNOWN_EMAIL_EVENTS: "create" a visitor for an event's unknown email, or "reject" the event."""
    return getattr(settings, "LEADFUNNEL_UNKNOWN_EMAIL_EVENTS", "create")


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


# --- row helpers (set-based, race-safe) ---------------------------------------------


def _lead_from_row(row: tuple, fields: list) -> Lead:
    values = []
    for model_field, value in zip(fields, row, strict=False):
        if hasattr(model_field, "from_db_value"):
            value = model_field.from_db_value(value, None, connection)
        values.append(value)
    return Lead.from_db(connection.alias, [f.attname for f in fields], values)


def _lead_upsert(candidate: Lead, *, company_domain: str | None = None) -> tuple[Lead, bool, int | None]:
    """Insert ``candidate`` or, when its email exists, lock and return the stored lead.

    Safe under concurrency: on PostgreSQL one ``INSERT … ON CONFLICT (email) DO
    UPDATE … RETURNING`` both creates-or-finds the row and locks it until the
    transaction ends, so concurrent submissions of one new email make one lead and
    are serialised. Elsewhere (the SQLite default) an insert in a savepoint with a
    retry on IntegrityError gives the same result.

    With ``company_domain`` (PostgreSQL) the same statement links a new lead to the
    company owning that domain and returns that company's id (None when there is none
    yet), saving the round trip of a separate lookup. Returns (lead, created, company id).
    """
    now = candidate.updated_at
    if _is_postgres():
        fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        params = [f.get_db_prep_save(getattr(candidate, f.attname), connection) for f in fields]
        returning = list(Lead._meta.concrete_fields)
        table = quote(Lead._meta.db_table)
        company_lookup = f"(SELECT id FROM {quote(Company._meta.db_table)} WHERE {quote('domain')} = %s)"  # noqa: S608
        slots = ["%s"] * len(fields)
        returned_company = "NULL"
        if company_domain:
            index = next(i for i, f in enumerate(fields) if f.attname == "company_id")
            slots[index] = f"COALESCE(%s, {company_lookup})"
            params.insert(index + 1, company_domain)
            returned_company = company_lookup
            params.append(company_domain)
        placeholders = ", ".join(slots)
        # Identifiers come from the model's metadata; every value is a bound parameter.
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "  # noqa: S608
            f"ON CONFLICT ({quote('email')}) DO UPDATE SET "
            f"{quote('last_activity_at')} = GREATEST({table}.{quote('last_activity_at')}, EXCLUDED.{quote('last_activity_at')}), "
            f"{quote('updated_at')} = EXCLUDED.{quote('updated_at')} "
            f"RETURNING {', '.join(quote(f.column) for f in returning)}, (xmax = 0), {returned_company}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return _lead_from_row(row[:-2], returning), bool(row[-2]), row[-1]
    try:
        with transaction.atomic():
            candidate.save(force_insert=True)
        return candidate, True, candidate.company_id
    except IntegrityError:
        lead = Lead.objects.select_for_update().get(email=candidate.email)
        if candidate.last_activity_at and (not lead.last_activity_at or lead.last_activity_at < now):
            Lead.objects.filter(pk=lead.pk).update(last_activity_at=candidate.last_activity_at, updated_at=now)
            lead.last_activity_at = candidate.last_activity_at
        return lead, False, candidate.company_id


def _company_for_domain(domain: str, *, profile: dict[str, str], now: datetime) -> int:
    """The id of the company owning ``domain``, created on first sight (race-safe)."""
    company_id = Company.objects.filter(domain=domain).values_list("id", flat=True).first()
    if company_id:
        return company_id
    company = Company(
        name=profile.get("company_name") or intake.company_name_from_domain(domain),
        domain=domain,
        size_band=profile.get("company_size", ""),
        industry=profile.get("industry", ""),
        country=profile.get("country", ""),
        city=profile.get("city", ""),
        created_at=now,
        updated_at=now,
    )
    if _is_postgres():
        fields = [f for f in Company._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        # Identifiers come from the model's metadata; every value is a bound parameter.
        sql = (
            f"INSERT INTO {quote(Company._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({quote('domain')}) DO NOTHING RETURNING id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [f.get_db_prep_save(getattr(company, f.attname), connection) for f in fields])
            row = cursor.fetchone()
        if row:
            return row[0]
    else:
        try:
            with transaction.atomic():
                company.save(force_insert=True)
            return company.pk
        except IntegrityError:
            pass
    # Someone else created it a moment ago; read-committed lets this statement see it.
    return Company.objects.values_list("id", flat=True).get(domain=domain)


def _entry_transition(lead: Lead, *, now: datetime, cause: str, cause_ref: str, reason: str) -> StageTransition:
    """The first line of every lead's history: entering the funnel (from nothing to visitor)."""
    return StageTransition(
        lead_id=lead.pk,
        from_stage="",
        to_stage=lead.stage,
        at=now,
        cause=cause,
        cause_ref=cause_ref,
        reason=reason,
        cycle=lead.cycle,
    )


def _merge_custom(current: dict, incoming: dict[str, Any], *, overwrite: bool) -> dict:
    merged = dict(current or {})
    for key, value in incoming.items():
        if key in merged:
            if overwrite:
                merged[key] = value
        elif len(merged) < intake.MAX_CUSTOM_FIELDS_PER_LEAD:
            merged[key] = value
        else:
            logger.info("custom field %r not kept on the lead: it already has %d", key, len(merged))
    return merged


# --- intake ---------------------------------------------------------------------------


@dataclass
class SubmitResult:
    submission_id: int
    lead: Lead | None = None
    created: bool = False
    replayed: bool = False
    spam: bool = False


def _filled(value: Any) -> bool:
    """A honeypot counts as filled by any non-blank value (bots fill every field)."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple)):
        return any(_filled(v) for v in value)
    return True


def _replayed(form: Form, key: str | None) -> int | None:
    if not key:
        return None
    return FormSubmission.objects.filter(form=form, idempotency_key=key).values_list("id", flat=True).first()


def lead_submit_form(
    *,
    form: Form,
    data: dict[str, Any],
    ip: str | None = None,
    user_agent: str = "",
    idempotency_key: str | None = None,
) -> SubmitResult:
    """Take one public form submission: upsert the lead by email, record the submission and a
    ``form_submit`` interaction, score, and publish ``lead.created``/``lead.form_submitted``.

    The caller never sets stage, score or owner (they are dropped by :mod:`leads.intake`).
    With an ``idempotency_key`` a retry answers the first submission's id and stores nothing.
    A filled honeypot field stores the submission as spam, without a lead.
    """
    key = (idempotency_key or "").strip()[:200] or None
    replayed = _replayed(form, key)
    if replayed:
        return SubmitResult(submission_id=replayed, replayed=True)
    ip = _clean_ip(ip)
    user_agent = (user_agent or "")[:500].replace("\x00", "")
    payload = intake.scrub(data)

    if form.honeypot_field and _filled(data.get(form.honeypot_field)):
        return _store_spam(form=form, payload=payload, ip=ip, user_agent=user_agent, key=key)

    parsed = intake.parse_submission(data, honeypot_field=form.honeypot_field)
    try:
        with transaction.atomic():
            return _submit(form=form, parsed=parsed, payload=payload, ip=ip, user_agent=user_agent, key=key)
    except IntegrityError:
        # A concurrent retry with the same Idempotency-Key won the race: answer its id.
        replayed = _replayed(form, key)
        if replayed:
            return SubmitResult(submission_id=replayed, replayed=True)
        raise


def _store_spam(*, form: Form, payload: dict, ip: str | None, user_agent: str, key: str | None) -> SubmitResult:
    try:
        with transaction.atomic():
            submission = FormSubmission.objects.create(
                form=form, lead=None, payload=payload, ip=ip, user_agent=user_agent, idempotency_key=key, is_spam=True
            )
    except IntegrityError:
        replayed = _replayed(form, key)
        if replayed:
            return SubmitResult(submission_id=replayed, replayed=True, spam=True)
        raise
    logger.info("form %s: honeypot filled, submission %s stored as spam (ip %s)", form.slug, submission.pk, ip)
    return SubmitResult(submission_id=submission.pk, spam=True)


def _new_visitor(
    parsed: intake.ParsedSubmission,
    *,
    now,
    company_id: int | None,
    source: str,
    channel: str,
    consent_source: str,
    first_form_id: int | None = None,
    last_activity_at=None,
) -> Lead:
    """An unsaved visitor built from a parsed submission: profile, consent and first touch."""
    return Lead(
        email=parsed.email,
        company_id=company_id,
        custom_fields=_merge_custom({}, parsed.custom, overwrite=False),
        consent=bool(parsed.consent),
        consent_at=now if parsed.consent else None,
        consent_source=consent_source if parsed.consent else "",
        source=source,
        channel=channel,
        first_form_id=first_form_id,
        utm_source=parsed.first_touch.get("utm_source", ""),
        utm_medium=parsed.first_touch.get("utm_medium", ""),
        utm_campaign=parsed.first_touch.get("utm_campaign", ""),
        first_page_url=parsed.page_url,
        stage=Stage.VISITOR,
        stage_changed_at=now,
        created_at=now,
        updated_at=now,
        last_activity_at=last_activity_at,
        **parsed.profile,
    )


def _submit(
    *, form: Form, parsed: intake.ParsedSubmission, payload: dict, ip: str | None, user_agent: str, key: str | None
) -> SubmitResult:
    """The intake's writes, in as few round trips as the rules allow (this path is benchmarked):
    one upsert (which also finds the company), at most one profile update, one statement for the
    submission + interaction (+ first history line), one outbox insert, then scoring."""
    now = timezone.now()
    profile = parsed.profile
    domain = intake.email_domain(parsed.email)
    business = intake.is_business_domain(domain)
    company_id = None
    if business and not _is_postgres():
        company_id = _company_for_domain(domain, profile=profile, now=now)

    candidate = _new_visitor(
        parsed,
        now=now,
        company_id=company_id,
        source=parsed.first_touch.get("utm_source") or "website",
        channel=form.channel,
        consent_source=f"form:{form.slug}",
        first_form_id=form.pk,
        last_activity_at=now,
    )
    lead, created, domain_company_id = _lead_upsert(candidate, company_domain=domain if business else None)

    changes: dict[str, Any] = {}
    if business and lead.company_id is None:
        # First lead of a new company (or an older lead not linked yet).
        changes["company_id"] = domain_company_id or _company_for_domain(domain, profile=profile, now=now)
    profile_changed = created or bool(changes)
    if not created:
        for name, value in profile.items():
            current = getattr(lead, name)
            if value != current and (form.overwrite_profile or not current):
                changes[name] = value
                profile_changed = True
        if parsed.consent and not lead.consent:
            changes.update(consent=True, consent_at=now, consent_source=f"form:{form.slug}")
        for name, value in (*parsed.first_touch.items(), ("first_page_url", parsed.page_url)):
            if value and not getattr(lead, name):
                changes[name] = value
        if lead.first_form_id is None:
            changes["first_form_id"] = form.pk
        if not lead.channel:
            changes["channel"] = form.channel
        if parsed.custom:
            merged = _merge_custom(lead.custom_fields, parsed.custom, overwrite=form.overwrite_profile)
            if merged != lead.custom_fields:
                changes["custom_fields"] = merged
                profile_changed = True
    if changes:
        Lead.objects.filter(pk=lead.pk).update(**changes, updated_at=now)
        for name, value in changes.items():
            setattr(lead, name, value)

    properties = {
        "form": form.slug,
        "form_id": form.pk,
        "form_kind": form.kind,
        "channel": form.channel,
        "channel_weight": form.channel_weight,
        "page_url": parsed.page_url,
        **parsed.first_touch,
    }
    entry = (
        _entry_transition(
            lead, now=now, cause=TransitionCause.API, cause_ref=f"form:{form.slug}", reason=f"Submitted {form.name}"
        )
        if created
        else None
    )
    submission_id, interaction_id = _insert_submission(
        form=form, lead=lead, payload=payload, ip=ip, user_agent=user_agent, key=key, now=now,
        properties=properties, entry=entry,
    )  # fmt: skip
    properties["submission_id"] = submission_id
    interaction = Interaction(
        id=interaction_id,
        lead=lead,
        type=InteractionType.FORM_SUBMIT,
        occurred_at=now,
        received_at=now,
        source="form",
        properties=properties,
    )
    interaction._state.adding = False
    interaction._state.db = connection.alias

    messages: list[tuple[str, dict]] = []
    if created:
        messages.append(("lead.created", {"lead_id": lead.pk, "source": lead.source, "form_slug": form.slug}))
    messages.append(
        ("lead.form_submitted", {"lead_id": lead.pk, "form_slug": form.slug, "submission_id": submission_id})
    )
    messages.append(("interactions.recorded", {"lead_ids": [lead.pk], "types": [InteractionType.FORM_SUBMIT.value]}))
    outbox_publish_many(messages=messages)

    _scoring().score_interactions(lead=lead, interactions=[interaction], profile_changed=profile_changed)
    return SubmitResult(submission_id=submission_id, lead=lead, created=created)


def _insert_submission(
    *,
    form: Form,
    lead: Lead,
    payload: dict,
    ip: str | None,
    user_agent: str,
    key: str | None,
    now: datetime,
    properties: dict,
    entry: StageTransition | None,
) -> tuple[int, int]:
    """Store the raw submission, its ``form_submit`` interaction (which names the submission)
    and, for a new lead, the first line of its history. One statement on PostgreSQL."""
    if not _is_postgres():
        submission = FormSubmission.objects.create(
            form=form, lead=lead, payload=payload, ip=ip, user_agent=user_agent, idempotency_key=key, received_at=now
        )
        interaction = Interaction.objects.create(
            lead=lead,
            type=InteractionType.FORM_SUBMIT,
            occurred_at=now,
            received_at=now,
            source="form",
            properties={**properties, "submission_id": submission.pk},
        )
        if entry is not None:
            entry.save()
        return submission.pk, interaction.pk
    json_field = FormSubmission._meta.get_field("payload")
    quote = connection.ops.quote_name
    params: list = [
        form.pk, lead.pk, json_field.get_db_prep_save(payload, connection), ip, user_agent, key, now,
        lead.pk, now, now, json_field.get_db_prep_save(properties, connection),
    ]  # fmt: skip
    transition_cte = ""
    if entry is not None:
        transition_cte = (
            f", t AS (INSERT INTO {quote(StageTransition._meta.db_table)} "  # noqa: S608
            "(lead_id, from_stage, to_stage, at, cause, cause_ref, reason_code, reason, cycle, details) "
            "VALUES (%s, %s, %s, %s, %s, %s, '', %s, %s, '{}'::jsonb) RETURNING id)"
        )
        params += [
            lead.pk,
            entry.from_stage,
            entry.to_stage,
            now,
            entry.cause,
            entry.cause_ref,
            entry.reason,
            entry.cycle,
        ]
    # Identifiers come from the model's metadata; every value is a bound parameter.
    sql = (
        f"WITH s AS (INSERT INTO {quote(FormSubmission._meta.db_table)} "  # noqa: S608
        "(form_id, lead_id, payload, ip, user_agent, idempotency_key, is_spam, received_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, false, %s) RETURNING id), "
        f"i AS (INSERT INTO {quote(Interaction._meta.db_table)} "
        "(lead_id, type, occurred_at, received_at, properties, source, external_id) "
        "SELECT %s::bigint, 'form_submit', %s::timestamptz, %s::timestamptz, "
        "%s::jsonb || jsonb_build_object('submission_id', s.id), 'form', NULL FROM s RETURNING id)"
        f"{transition_cte} "
        "SELECT s.id, i.id FROM s, i"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        submission_id, interaction_id = cursor.fetchone()
    return submission_id, interaction_id


# --- leads created and edited by people and integrations ------------------------------

EDITABLE_FIELDS = frozenset(intake.PROFILE_FIELDS) | {
    "email",
    "time_zone",
    "custom_fields",
    "tags",
    "consent",
    "company",
}


@transaction.atomic
def lead_create(
    *, data: dict[str, Any], source: str, channel: str = Channel.API, actor=None, consent_source: str = ""
) -> Lead:
    """Create one lead (import-style, with a chosen source). 409 when the email exists."""
    parsed = intake.parse_submission(data)
    if channel not in Channel.values:
        raise ValidationFailed(f"channel: {channel!r} is not one of {', '.join(Channel.values)}.")
    now = timezone.now()
    domain = intake.email_domain(parsed.email)
    company_id = (
        _company_for_domain(domain, profile=parsed.profile, now=now) if intake.is_business_domain(domain) else None
    )
    lead = _new_visitor(
        parsed,
        now=now,
        company_id=company_id,
        source=(source or channel)[:100],
        channel=channel,
        consent_source=(consent_source or f"{channel}:{source}")[:200],
    )
    try:
        with transaction.atomic():
            lead.save(force_insert=True)
    except IntegrityError:
        existing = Lead.objects.filter(email=parsed.email).values_list("id", flat=True).first()
        raise Conflict(
            f"A lead with the email {parsed.email} already exists (id {existing}).",
            code="duplicate_email",
            fields={"email": ["A lead with this email already exists."]},
        ) from None
    who = getattr(actor, "username", "") if actor is not None else ""
    entry = _entry_transition(
        lead,
        now=now,
        cause=TransitionCause.API if channel == Channel.API else TransitionCause.USER,
        cause_ref=f"{channel}:{who}" if who else channel,
        reason=f"Created ({source or channel})",
    )
    entry.actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    entry.save()
    outbox_publish(topic="lead.created", payload={"lead_id": lead.pk, "source": lead.source, "form_slug": None})
    _scoring().score_profile_change(lead=lead)
    return lead


@transaction.atomic
def lead_update_profile(*, lead: Lead | int, changes: dict[str, Any], actor=None) -> Lead:
    """Edit profile fields (never stage, score, owner or history). Re-scores the profile when it changed."""
    unknown = sorted(set(changes) - EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"These fields cannot be changed here: {', '.join(unknown)}.",
            fields={name: ["Read-only or unknown field."] for name in unknown},
        )
    lead_id = lead if isinstance(lead, int) else lead.pk
    locked = Lead.objects.select_for_update().filter(pk=lead_id).first()
    if locked is None:
        raise NotFound(f"No lead with id {lead_id}.")
    updates: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in changes.items():
        if name == "email":
            try:
                value = intake.normalise_email(value)
            except ValidationFailed as exc:
                errors.update(exc.fields)
                continue
        elif name == "company":
            name = "company_name"
        if name in intake.PROFILE_FIELDS or name == "time_zone":
            try:
                value = intake.clean_text(value)
            except TypeError:
                errors[name] = ["Must be text."]
                continue
            limit = intake.PROFILE_FIELDS.get(name, 64)
            if len(value) > limit:
                errors[name] = [f"At most {limit} characters."]
                continue
        elif name == "custom_fields":
            if not isinstance(value, dict) or len(value) > intake.MAX_CUSTOM_FIELDS_PER_LEAD:
                errors[name] = [f"Must be an object with at most {intake.MAX_CUSTOM_FIELDS_PER_LEAD} keys."]
                continue
            value = intake.scrub(value)
        elif name == "tags":
            if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in value):
                errors[name] = ["Must be a list of short strings."]
                continue
            value = sorted({t.strip() for t in value if t.strip()})
        elif name == "consent" and not isinstance(value, bool):
            errors[name] = ["Must be true or false."]
            continue
        if getattr(locked, name) != value:
            updates[name] = value
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first][0]}", fields=errors)
    if "consent" in updates:
        updates["consent_at"] = timezone.now() if updates["consent"] else None
        updates["consent_source"] = f"user:{getattr(actor, 'username', '')}" if updates["consent"] else ""
    if "email" in updates and Lead.objects.filter(email=updates["email"]).exclude(pk=lead_id).exists():
        raise Conflict(
            f"Another lead already has the email {updates['email']}.",
            code="duplicate_email",
            fields={"email": ["A lead with this email already exists."]},
        )
    if updates:
        updates["updated_at"] = timezone.now()
        Lead.objects.filter(pk=lead_id).update(**updates)
        for name, value in updates.items():
            setattr(locked, name, value)
        _scoring().score_profile_change(lead=locked)
    if not isinstance(lead, int):
        for name, value in updates.items():
            setattr(lead, name, value)
    return locked


# --- interactions ---------------------------------------------------------------------


@dataclass
class CleanEvent:
    type: str
    occurred_at: datetime
    properties: dict
    lead_id: int | None = None
    email: str | None = None
    source: str = ""
    external_id: str | None = None


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
        if event_type not in OUTBOUND_TYPES and at > entry.get("last_activity_at", at - timedelta(seconds=1)):
            entry["last_activity_at"] = at
        if event_type == InteractionType.UNSUBSCRIBE and at < entry.get("unsubscribed_at", at + timedelta(seconds=1)):
            entry["unsubscribed_at"] = at
        if event_type == InteractionType.EMAIL_BOUNCE and at < entry.get("email_bounced_at", at + timedelta(seconds=1)):
            entry["email_bounced_at"] = at
    return per_lead


def _apply_lead_flags(per_lead: dict[int, dict[str, datetime]]) -> None:
    """One UPDATE for all touched leads: activity moves forward only; unsubscribe/bounce keep the first."""
    per_lead = {lead_id: entry for lead_id, entry in per_lead.items() if entry}
    if not per_lead:
        return
    if _is_postgres():
        quote = connection.ops.quote_name
        table = quote(Lead._meta.db_table)
        ids, activity, unsubscribed, bounced = [], [], [], []
        for lead_id, entry in sorted(per_lead.items()):
            ids.append(lead_id)
            activity.append(entry.get("last_activity_at"))
            unsubscribed.append(entry.get("unsubscribed_at"))
            bounced.append(entry.get("email_bounced_at"))
        params = [ids, activity, unsubscribed, bounced]
        # Identifiers come from the model's metadata; every value is a bound parameter (4 arrays).
        sql = (
            f"UPDATE {table} AS l SET "  # noqa: S608
            "last_activity_at = CASE WHEN v.act IS NULL THEN l.last_activity_at "
            "  ELSE GREATEST(l.last_activity_at, v.act) END, "
            "unsubscribed_at = COALESCE(l.unsubscribed_at, v.unsub), "
            "email_bounced_at = COALESCE(l.email_bounced_at, v.bounce) "
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) "
            "AS v(id, act, unsub, bounce) WHERE l.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    for lead_id, entry in per_lead.items():  # SQLite (development default): small batches
        lead = Lead.objects.filter(pk=lead_id).only("last_activity_at", "unsubscribed_at", "email_bounced_at").first()
        updates = {}
        if "last_activity_at" in entry and (
            not lead.last_activity_at or lead.last_activity_at < entry["last_activity_at"]
        ):
            updates["last_activity_at"] = entry["last_activity_at"]
        for name in ("unsubscribed_at", "email_bounced_at"):
            if name in entry and getattr(lead, name) is None:
                updates[name] = entry[name]
        if updates:
            Lead.objects.filter(pk=lead_id).update(**updates)


def _insert_interactions(rows: list[Interaction]) -> None:
    """Insert many interactions and set their ids. On PostgreSQL one ``INSERT … SELECT FROM
    unnest(arrays)``: seven array parameters instead of seven placeholders per row, which keeps
    the bulk endpoint's Python and parse time flat (ids come back in input order)."""
    if not _is_postgres():
        Interaction.objects.bulk_create(rows)
        return
    quote = connection.ops.quote_name
    params = [
        [r.lead_id for r in rows],
        [r.type for r in rows],
        [r.occurred_at for r in rows],
        [r.received_at for r in rows],
        [json.dumps(r.properties, cls=DjangoJSONEncoder) for r in rows],
        [r.source for r in rows],
        [r.external_id for r in rows],
    ]
    # Identifiers come from the model's metadata; every value is a bound parameter.
    sql = (
        f"INSERT INTO {quote(Interaction._meta.db_table)} "  # noqa: S608
        "(lead_id, type, occurred_at, received_at, properties, source, external_id) "
        "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[], %s::timestamptz[], "
        "%s::jsonb[], %s::varchar[], %s::varchar[]) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


def _resolve_email_leads(emails: set[str], *, source: str, now: datetime) -> tuple[dict[str, int], list[int]]:
    """Lock the leads with these emails; create visitors for unknown ones when the policy allows.

    Returns ({email: lead id}, ids of leads created here).
    """
    if not emails:
        return {}, []
    found = dict(Lead.objects.select_for_update().filter(email__in=emails).order_by("pk").values_list("email", "pk"))
    missing = sorted(emails - set(found))
    if not missing or unknown_email_policy() != "create":
        return found, []
    created_ids: list[int] = []
    fresh = [
        Lead(
            email=email,
            source=source[:100],
            channel=Channel.INTERACTION,
            stage=Stage.VISITOR,
            stage_changed_at=now,
            created_at=now,
            updated_at=now,
        )
        for email in missing
    ]
    if _is_postgres():
        fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        params = [f.get_db_prep_save(getattr(lead, f.attname), connection) for lead in fresh for f in fields]
        # Identifiers come from the model's metadata; every value is a bound parameter.
        sql = (
            f"INSERT INTO {quote(Lead._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"VALUES {', '.join([one_row] * len(fresh))} ON CONFLICT ({quote('email')}) DO NOTHING RETURNING id, email"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for lead_id, email in cursor.fetchall():
                found[email] = lead_id
                created_ids.append(lead_id)
    else:
        for lead in fresh:
            try:
                with transaction.atomic():
                    lead.save(force_insert=True)
                found[lead.email] = lead.pk
                created_ids.append(lead.pk)
            except IntegrityError:
                pass
    racing = [email for email in missing if email not in found]
    if racing:  # created by a concurrent request since our SELECT
        found.update(
            Lead.objects.select_for_update().filter(email__in=racing).order_by("pk").values_list("email", "pk")
        )
    if created_ids:
        StageTransition.objects.bulk_create(
            [
                StageTransition(
                    lead_id=lead_id,
                    from_stage="",
                    to_stage=Stage.VISITOR,
                    at=now,
                    cause=TransitionCause.API,
                    cause_ref=f"interactions:{source}"[:100],
                    reason="Created by an interaction for an unknown email",
                )
                for lead_id in created_ids
            ]
        )
    return found, created_ids


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

    created_ids: list[int] = []
    if event.lead_id is not None:
        locked = Lead.objects.select_for_update().filter(pk=event.lead_id).first()
        if locked is None:
            raise ValidationFailed(f"lead: No lead with id {event.lead_id}.", fields={"lead": ["Unknown lead."]})
    elif unknown_email_policy() == "create":
        locked, was_created, _ = _lead_upsert(
            Lead(
                email=event.email,
                source=event.source[:100],
                channel=Channel.INTERACTION,
                stage=Stage.VISITOR,
                stage_changed_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        if was_created:
            created_ids.append(locked.pk)
            _entry_transition(
                locked,
                now=now,
                cause=TransitionCause.API,
                cause_ref=f"interactions:{event.source}"[:100],
                reason="Created by an interaction for an unknown email",
            ).save()
    else:
        locked = Lead.objects.select_for_update().filter(email=event.email).first()
        if locked is None:
            message = _unknown_email_error(event.email)
            raise ValidationFailed(message, fields={"email": [message]})

    interaction = Interaction(
        lead=locked,
        type=event.type,
        occurred_at=event.occurred_at,
        received_at=now,
        properties=event.properties,
        source=event.source,
        external_id=event.external_id,
    )
    if event.external_id is not None:
        try:
            with transaction.atomic():
                interaction.save(force_insert=True)
        except IntegrityError:
            existing = Interaction.objects.get(source=event.source, external_id=event.external_id)
            return existing, False
    else:
        interaction.save(force_insert=True)

    flags = _lead_flag_updates([(locked.pk, event.type, event.occurred_at)])
    _apply_lead_flags(flags)
    for name, value in flags.get(locked.pk, {}).items():
        current = getattr(locked, name)
        if current is None or (name == "last_activity_at" and current < value):
            setattr(locked, name, value)
    messages = [("interactions.recorded", {"lead_ids": [locked.pk], "types": [event.type]})]
    messages += [("lead.created", {"lead_id": i, "source": locked.source, "form_slug": None}) for i in created_ids]
    outbox_publish_many(messages=messages)
    _scoring().score_interactions(lead=locked, interactions=[interaction])
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
        # Lock every lead of the batch in id order, so concurrent batches cannot deadlock.
        known_ids = (
            set(Lead.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
            if ids
            else set()
        )
        by_email, created_ids = _resolve_email_leads(
            {e.email for _, e in valid if e.email is not None}, source=source or "api", now=now
        )
        result.created_lead_ids = created_ids

        external = {(e.source, e.external_id) for _, e in valid if e.external_id is not None}
        seen: set[tuple[str, str]] = set()
        if external:
            q = Q()
            for src, ext in external:
                q |= Q(source=src, external_id=ext)
            seen = set(Interaction.objects.filter(q).values_list("source", "external_id"))

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
            rows.append(
                Interaction(
                    lead_id=lead_id,
                    type=event.type,
                    occurred_at=event.occurred_at,
                    received_at=now,
                    properties=event.properties,
                    source=event.source,
                    external_id=event.external_id,
                )
            )
        result.errors.sort(key=lambda e: e["index"])
        if rows:
            _insert_interactions(rows)
            _apply_lead_flags(_lead_flag_updates([(r.lead_id, r.type, r.occurred_at) for r in rows]))
            _scoring().score_interactions_bulk(interactions=rows)
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
        messages += [
            ("lead.created", {"lead_id": i, "source": (source or "api")[:100], "form_slug": None}) for i in created_ids
        ]
        outbox_publish_many(messages=messages)
    return result


# --- the sales workflow -----------------------------------------------------------------


def _lock_lead(lead: Lead | int) -> Lead:
    lead_id = lead if isinstance(lead, int) else lead.pk
    locked = Lead.objects.select_for_update().filter(pk=lead_id).first()
    if locked is None:
        raise NotFound(f"No lead with id {lead_id}.")
    return locked


def _ensure_can_act(lead: Lead, actor, *, marketer_when_unowned: bool = False) -> None:
    """Only the owner rep or an admin acts on a lead; an unowned lead is open to any sales rep."""
    if is_admin(actor):
        return
    if lead.owner_id is not None:
        if lead.owner_id == getattr(actor, "pk", None) and is_sales(actor):
            return
        raise Forbidden("Only the sales rep who owns this lead, or an admin, may do this.", code="not_owner")
    if is_sales(actor) or (marketer_when_unowned and is_marketer(actor)):
        return
    raise Forbidden("Only sales reps and admins may do this.")


def _refresh(lead: Lead | int, locked: Lead) -> Lead:
    """Return a fresh copy after a stage change (and keep the caller's instance truthful)."""
    fresh = Lead.objects.select_related("owner", "company").get(pk=locked.pk)
    if isinstance(lead, Lead):
        for model_field in Lead._meta.concrete_fields:
            setattr(lead, model_field.attname, getattr(fresh, model_field.attname))
    return fresh


def _reason(reason: str, reason_code: str, vocabulary: type, *, required: bool, what: str) -> tuple[str, str]:
    reason = (reason or "").replace("\x00", "").strip()
    reason_code = (reason_code or "").strip()
    if reason_code and reason_code not in vocabulary.values:
        raise ValidationFailed(
            f"reason_code: {reason_code!r} is not one of {', '.join(vocabulary.values)}.",
            fields={"reason_code": [f"Choose one of {', '.join(vocabulary.values)}."]},
        )
    if required and not reason and not reason_code:
        raise ValidationFailed(
            f"reason: A reason is required to {what} (reason_code and/or reason).",
            fields={"reason": ["This field is required."]},
        )
    if len(reason) > 5000:
        raise ValidationFailed("reason: At most 5000 characters.", fields={"reason": ["Too long."]})
    return reason, reason_code


@transaction.atomic
def lead_mark_mql(*, lead: Lead | int, actor, reason: str) -> Lead:
    """A marketer promotes a lead to MQL by hand (as HubSpot allows). Routed to a rep with an SLA."""
    if not is_marketer(actor):
        raise Forbidden("Only marketers and admins may mark a lead as MQL.")
    reason, _ = _reason(reason, "", RejectionReason, required=True, what="mark a lead as MQL")
    locked = _lock_lead(lead)
    lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.MQL,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=reason,
        details={
            "manual": True,
            "score": locked.score,
            "fit_score": locked.fit_score,
            "engagement_score": locked.engagement_score,
        },
    )
    return _refresh(lead, locked)


@transaction.atomic
def lead_accept(*, lead: Lead | int, actor, reason: str = "") -> Lead:
    """MQL/PQL → SAL by the owner rep (or an admin). An unowned MQL is claimed by the rep who accepts it."""
    locked = _lock_lead(lead)
    _ensure_can_act(locked, actor)
    if locked.stage in AWAITING_SALES and locked.owner_id is None and is_sales(actor):
        now = timezone.now()
        Lead.objects.filter(pk=locked.pk).update(owner=actor, assigned_at=now)
    lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.SAL,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=(reason or "").strip(),
        expected_from=(Stage.MQL, Stage.PQL),
    )
    return _refresh(lead, locked)


@transaction.atomic
def lead_reject(*, lead: Lead | int, actor, reason: str = "", reason_code: str = "") -> Lead:
    """MQL/PQL/SAL → recycled: back to marketing, owner cleared. A reason (code and/or text) is required."""
    reason, reason_code = _reason(reason, reason_code, RejectionReason, required=True, what="reject a lead")
    locked = _lock_lead(lead)
    _ensure_can_act(locked, actor)
    lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.RECYCLED,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=reason,
        reason_code=reason_code,
        details={"rejected_by": actor.pk, "previous_owner": locked.owner_id},
        expected_from=(Stage.MQL, Stage.PQL, Stage.SAL),
    )
    return _refresh(lead, locked)


QUALIFICATION_FACTS = ("buying_cycle", "influencer", "timeframe", "opportunity_size", "next_step")


def _money(value: Any, name: str, *, required: bool) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{name}: This field is required.", fields={name: ["This field is required."]})
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{name}: Must be an amount.", fields={name: ["Must be a number."]}) from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise ValidationFailed(f"{name}: Must be between 0 and 999,999,999,999.", fields={name: ["Out of range."]})
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def lead_qualify(
    *,
    lead: Lead | int,
    actor,
    buying_cycle: str,
    influencer: str,
    timeframe: str,
    opportunity_size: Any,
    next_step: str,
    budget: Any = None,
) -> tuple[Lead, Opportunity]:
    """SAL → SQL with the qualification facts (budget optional); opens an opportunity."""
    facts = {"buying_cycle": buying_cycle, "influencer": influencer, "timeframe": timeframe, "next_step": next_step}
    missing = [name for name, value in facts.items() if not isinstance(value, str) or not value.strip()]
    if missing:
        raise ValidationFailed(
            f"{missing[0]}: This field is required to qualify a lead.",
            fields={name: ["This field is required."] for name in missing},
        )
    if len(timeframe.strip()) > 200:
        raise ValidationFailed("timeframe: At most 200 characters.", fields={"timeframe": ["Too long."]})
    size = _money(opportunity_size, "opportunity_size", required=True)
    budget_amount = _money(budget, "budget", required=False)
    locked = _lock_lead(lead)
    _ensure_can_act(locked, actor)
    clean = {name: value.replace("\x00", "").strip() for name, value in facts.items()}
    lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.SQL,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason="Qualified",
        details={**clean, "opportunity_size": str(size), "budget": str(budget_amount) if budget_amount else None},
        expected_from=(Stage.SAL,),
    )
    fresh = _refresh(lead, locked)
    opportunity = Opportunity.objects.create(
        lead=fresh,
        cycle=fresh.cycle,
        opportunity_size=size,
        budget=budget_amount,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **clean,
    )
    return fresh, opportunity


@transaction.atomic
def lead_close(*, lead: Lead | int, actor, won: bool, reason: str = "", reason_code: str = "") -> Lead:
    """SQL → customer (won) or lost (reason required); closes the open opportunity."""
    if not isinstance(won, bool):
        raise ValidationFailed("won: Must be true or false.", fields={"won": ["Must be true or false."]})
    reason, reason_code = _reason(reason, reason_code, LossReason, required=not won, what="close a lead as lost")
    locked = _lock_lead(lead)
    _ensure_can_act(locked, actor)
    transition = lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.CUSTOMER if won else Stage.LOST,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=reason,
        reason_code=reason_code,
        details={"won": won},
        expected_from=(Stage.SQL,),
    )
    Opportunity.objects.filter(lead_id=locked.pk, status=Opportunity.Status.OPEN).update(
        status=Opportunity.Status.WON if won else Opportunity.Status.LOST,
        close_reason_code=reason_code,
        close_reason=reason,
        closed_at=transition.at,
        updated_at=transition.at,
    )
    return _refresh(lead, locked)


@transaction.atomic
def lead_disqualify(*, lead: Lead | int, actor, reason: str = "", reason_code: str = "") -> Lead:
    """Any open stage → disqualified (never worked again), with a reason.

    The owner rep or an admin; a marketer too while no rep owns the lead (e.g. spam visitors).
    """
    reason, reason_code = _reason(reason, reason_code, RejectionReason, required=True, what="disqualify a lead")
    locked = _lock_lead(lead)
    _ensure_can_act(locked, actor, marketer_when_unowned=True)
    open_opportunity = Opportunity.objects.filter(lead_id=locked.pk, status=Opportunity.Status.OPEN)
    transition = lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.DISQUALIFIED,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=reason,
        reason_code=reason_code,
    )
    open_opportunity.update(
        status=Opportunity.Status.LOST,
        close_reason_code="disqualified",
        close_reason=reason,
        closed_at=transition.at,
        updated_at=transition.at,
    )
    return _refresh(lead, locked)

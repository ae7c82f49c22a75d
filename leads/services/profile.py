"""Leads created and edited by people and integrations: the profile, never stage, score or owner."""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadfunnel.errors import Conflict, NotFound, ValidationFailed

from .. import intake
from ..consent import consent_fields, status_from_flag
from ..models import Channel, ConsentStatus, Lead, LeadAlias, Stage, TransitionCause
from .funnel import Entry, companies_ensure, leads_enter_funnel
from .qualification import leads_score

logger = logging.getLogger(__name__)


def merge_custom(current: dict, incoming: dict[str, Any], *, overwrite: bool) -> dict:
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


def new_visitor(
    parsed: intake.ParsedSubmission,
    *,
    now,
    company_id: int | None,
    source: str,
    channel: str,
    consent_source: str,
    first_form_id: int | None = None,
    last_activity_at=None,
    double_opt_in: bool = False,
) -> Lead:
    """An unsaved visitor built from a parsed submission: profile, consent and first touch.

    Consent: opted in when the submission said so; pending when it came through a double opt-in
    form (unless it said no), to be confirmed from the emailed link."""
    if double_opt_in and parsed.consent is not False:
        consent = consent_fields(ConsentStatus.PENDING, source=consent_source, at=now)
    elif parsed.consent:
        consent = consent_fields(ConsentStatus.OPT_IN, source=consent_source, at=now)
    else:
        consent = consent_fields(ConsentStatus.NONE, source="", at=None)
    return Lead(
        email=parsed.email,
        company_id=company_id,
        custom_fields=merge_custom({}, parsed.custom, overwrite=False),
        **consent,
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


EDITABLE_FIELDS = frozenset(intake.PROFILE_FIELDS) | {
    "email",
    "time_zone",
    "custom_fields",
    "tags",
    "consent",
    "consent_status",
    "company",
}
# Statuses a person or an integration may set; "pending" only comes from a double opt-in form.
SETTABLE_CONSENT = (ConsentStatus.NONE, ConsentStatus.OPT_IN, ConsentStatus.OPT_OUT)


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
        companies_ensure(profiles={domain: parsed.profile}, now=now)[domain]
        if intake.is_business_domain(domain)
        else None
    )
    candidate = new_visitor(
        parsed,
        now=now,
        company_id=company_id,
        source=(source or channel)[:100],
        channel=channel,
        consent_source=(consent_source or f"{channel}:{source}")[:200],
    )
    who = getattr(actor, "username", "") if actor is not None else ""
    entry = Entry(
        lead=candidate,
        cause=TransitionCause.API if channel == Channel.API else TransitionCause.USER,
        cause_ref=f"{channel}:{who}" if who else channel,
        reason=f"Created ({source or channel})",
        actor=actor,
    )
    entered = leads_enter_funnel(entries=[entry], touch=False)
    lead = entered.leads[parsed.email]
    if lead.pk not in entered.created:
        raise Conflict(
            f"A lead with the email {parsed.email} already exists (id {lead.pk}).",
            code="duplicate_email",
            fields={"email": ["A lead with this email already exists."]},
        )
    leads_score(profile_lead_ids={lead.pk}, caller_leads={lead.pk: lead})
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
    if locked.erased_at is not None:
        raise Conflict("This lead's data was erased; its profile cannot be filled in again.", code="lead_erased")
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
            try:
                value = intake.normalise_tags(value)
            except ValidationFailed as exc:
                errors.update(exc.fields)
                continue
        elif name == "consent":
            if not isinstance(value, bool):
                errors[name] = ["Must be true or false."]
                continue
            if "consent_status" in changes:
                continue  # the explicit status says it
            name, value = "consent_status", status_from_flag(value, current=locked.consent_status)
        elif name == "consent_status" and value not in SETTABLE_CONSENT:
            errors[name] = [f"Must be one of {', '.join(SETTABLE_CONSENT)}."]
            continue
        if getattr(locked, name) != value:
            updates[name] = value
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first][0]}", fields=errors)
    if "consent_status" in updates:
        status = updates.pop("consent_status")
        who = f"user:{getattr(actor, 'username', '')}" if actor is not None else "api"
        given = status != ConsentStatus.NONE
        updates.update(consent_fields(status, source=who if given else "", at=timezone.now() if given else None))
    if "email" in updates:
        taken = Lead.objects.filter(email=updates["email"]).exclude(pk=lead_id).values_list("pk", flat=True).first()
        if taken is None:
            aliased = LeadAlias.objects.filter(email=updates["email"]).exclude(lead_id=lead_id)
            taken = aliased.values_list("lead_id", flat=True).first()
        if taken is not None:
            raise Conflict(
                f"Another lead (id {taken}) already has the email {updates['email']}: if they are the same "
                f"person, merge them (POST /api/v1/leads/{lead_id}/merge/ with "
                f'{{"duplicate": {taken}}}, or “Merge a duplicate” on the lead page).',
                code="duplicate_email",
                fields={"email": ["A lead with this email already exists: merge the two leads instead."]},
            )
    if updates:
        updates["updated_at"] = timezone.now()
        Lead.objects.filter(pk=lead_id).update(**updates)
        for name, value in updates.items():
            setattr(locked, name, value)
        leads_score(profile_lead_ids={locked.pk}, caller_leads={locked.pk: locked})
    if not isinstance(lead, int):
        for name, value in updates.items():
            setattr(lead, name, value)
    return locked

"""The public intake: one form submission upserts its lead, records the submission and a
``form_submit`` interaction, and scores them — in the request, or (``SCORING_DEFERRED``) queued
in the same statement for a worker to score after commit (this path is benchmarked)."""

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leadfunnel.outbox import outbox_publish_many

from .. import intake, sql
from ..consent import consent_fields
from ..models import ConsentStatus, Form, FormSubmission, Interaction, InteractionType, Lead, TransitionCause
from .funnel import Entry, companies_ensure, leads_enter_funnel
from .profile import merge_custom, new_visitor
from .qualification import leads_score, scores_drain_soon, scoring_deferred
from .tracking import visitor_identify_by_key

logger = logging.getLogger(__name__)


def _clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


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
    A filled honeypot field stores the submission as spam, without a lead. With the tracking
    script's ``lf_visitor`` (and ``lf_site``) the visitor is identified as the lead and its earlier
    page views become the lead's interactions, in the same transaction.
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
            result = _submit(form=form, parsed=parsed, payload=payload, ip=ip, user_agent=user_agent, key=key)
            if parsed.visitor and result.lead is not None:
                # The browser's earlier page views (lf-track.js) become this lead's, now that it exists.
                visitor_identify_by_key(visitor_key=parsed.visitor, site_key=parsed.site_key, lead_id=result.lead.pk)
            return result
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
    candidate = new_visitor(
        parsed,
        now=now,
        company_id=None,
        source=parsed.first_touch.get("utm_source") or "website",
        channel=form.channel,
        consent_source=f"form:{form.slug}",
        first_form_id=form.pk,
        last_activity_at=now,
        double_opt_in=form.double_opt_in,
    )
    entry = Entry(
        lead=candidate,
        cause=TransitionCause.API,
        cause_ref=f"form:{form.slug}",
        reason=f"Submitted {form.name}",
        company_domain=domain if business else None,
    )
    entered = leads_enter_funnel(entries=[entry], publish=False)
    lead = entered.leads[parsed.email]
    created = lead.pk in entered.created

    changes: dict[str, Any] = {}
    if business and lead.company_id is None:
        # First lead of a new company (or an older lead not linked yet).
        changes["company_id"] = companies_ensure(profiles={domain: profile}, now=now)[domain]
    profile_changed = created or bool(changes)
    if not created:
        for name, value in profile.items():
            current = getattr(lead, name)
            if value != current and (form.overwrite_profile or not current):
                changes[name] = value
                profile_changed = True
        if form.double_opt_in:
            if parsed.consent is not False and lead.consent_status not in (ConsentStatus.OPT_IN, ConsentStatus.PENDING):
                changes.update(consent_fields(ConsentStatus.PENDING, source=f"form:{form.slug}", at=now))
        elif parsed.consent and lead.consent_status != ConsentStatus.OPT_IN:
            changes.update(consent_fields(ConsentStatus.OPT_IN, source=f"form:{form.slug}", at=now))
        for name, value in (*parsed.first_touch.items(), ("first_page_url", parsed.page_url)):
            if value and not getattr(lead, name):
                changes[name] = value
        if lead.first_form_id is None:
            changes["first_form_id"] = form.pk
        if not lead.channel:
            changes["channel"] = form.channel
        if parsed.custom:
            merged = merge_custom(lead.custom_fields, parsed.custom, overwrite=form.overwrite_profile)
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
    deferred = scoring_deferred()
    submission_id, interaction_id = sql.submission_insert(
        form_id=form.pk,
        lead_id=lead.pk,
        payload=payload,
        ip=ip,
        user_agent=user_agent,
        key=key,
        now=now,
        properties=properties,
        queue_scoring=deferred,
        profile_changed=profile_changed,
    )
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

    messages = [
        *entered.messages,
        ("lead.form_submitted", {"lead_id": lead.pk, "form_slug": form.slug, "submission_id": submission_id}),
        ("interactions.recorded", {"lead_ids": [lead.pk], "types": [InteractionType.FORM_SUBMIT.value]}),
    ]
    if form.double_opt_in and lead.consent_status == ConsentStatus.PENDING:
        # The confirmation email: a request row and its send, after commit (leads.handlers).
        messages.append(("lead.consent_requested", {"lead_id": lead.pk, "form_id": form.pk}))
    outbox_publish_many(messages=messages)
    if deferred:
        scores_drain_soon()  # the same scoring, in a worker's batch after commit
    else:
        leads_score(
            interactions=[interaction],
            profile_lead_ids={lead.pk} if profile_changed else set(),
            caller_leads={lead.pk: lead},
        )
    return SubmitResult(submission_id=submission_id, lead=lead, created=created)

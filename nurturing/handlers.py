"""Outbox handlers: enrol on form submissions and stage entries, exit on handoff or
disqualification, goals on interactions. DB-only and idempotent (a replayed event
finds the enrolment already there, or already ended)."""

from leadfunnel.outbox import outbox_handler
from leads.models import Lead, Stage

from .models import ExitReason
from .services import (
    HANDOFF_STAGES,
    enroll_on_forms,
    enroll_on_stage,
    enrollments_exit,
    goals_check_interactions,
    goals_check_stage,
)


@outbox_handler("lead.form_submitted", many=True)
def enrol_on_form_submitted(payloads: list[dict]) -> None:
    by_form: dict[str, list[int]] = {}
    for payload in payloads:
        if payload.get("lead_id") and payload.get("form_slug"):
            by_form.setdefault(payload["form_slug"], []).append(payload["lead_id"])
    if by_form:
        enroll_on_forms(lead_ids_by_form=by_form)


@outbox_handler("lead.stage_changed")
def react_to_stage_change(payload: dict) -> None:
    lead_id, stage = payload.get("lead_id"), payload.get("to")
    if not lead_id or not stage:
        return
    # Goals first: "became MQL" is a success, not merely a handoff.
    goals_check_stage(lead_id=lead_id, stage=stage)
    if stage == Stage.DISQUALIFIED:
        enrollments_exit(lead_ids=[lead_id], reason=ExitReason.DISQUALIFIED)
    elif stage in HANDOFF_STAGES:
        enrollments_exit(lead_ids=[lead_id], reason=ExitReason.HANDOFF, handoff_stage=stage)
    enroll_on_stage(lead_id=lead_id, stage=stage)


@outbox_handler("interactions.recorded", many=True)
def react_to_interactions(payloads: list[dict]) -> None:
    # One set-based pass for the batch: goal checks look at what each lead actually did since
    # enrolling, so merging the batches' leads and types reaches the same goals.
    lead_ids = sorted({i for p in payloads for i in p.get("lead_ids") or []})
    types = sorted({t for p in payloads for t in p.get("types") or []})
    if not lead_ids:
        return
    goals_check_interactions(lead_ids=lead_ids, types=types)
    if {"unsubscribe", "email_complaint", "email_bounce"} & set(types):
        for field, reason in (("unsubscribed_at", ExitReason.UNSUBSCRIBED), ("email_bounced_at", ExitReason.BOUNCED)):
            gone = Lead.objects.filter(pk__in=lead_ids, **{f"{field}__isnull": False}).values_list("pk", flat=True)
            enrollments_exit(lead_ids=list(gone), reason=reason)


@outbox_handler("lead.erased", many=True)
def exit_erased(payloads: list[dict]) -> None:
    """A person's data was erased: their enrolments end (the rows stay for the sequences' figures)."""
    lead_ids = sorted({p["lead_id"] for p in payloads if p.get("lead_id")})
    if lead_ids:
        enrollments_exit(lead_ids=lead_ids, reason=ExitReason.ERASED)

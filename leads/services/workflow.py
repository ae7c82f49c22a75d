"""The sales workflow: a rep (or an admin) accepts, rejects, qualifies, closes or disqualifies
a lead; a marketer may mark one as MQL by hand. Each checks who may act, validates what the
rep typed, and moves the lead through :func:`.funnel.lead_change_stage`."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from leadfunnel.errors import Forbidden, NotFound, ValidationFailed
from leadfunnel.roles import is_admin, is_marketer, is_sales

from ..models import Lead, LossReason, Opportunity, RejectionReason, Stage, TransitionCause
from .funnel import StageChanges, StageMove, lead_change_stage, leads_change_stage


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
    lead_id = lead if isinstance(lead, int) else lead.pk
    leads_mark_mql(lead_ids=[lead_id], actor=actor, reason=reason, strict=True)
    return _refresh(lead, Lead(pk=lead_id))


@transaction.atomic
def leads_mark_mql(*, lead_ids: list[int], actor, reason: str, strict: bool = False) -> StageChanges:
    """Marketers' hand promotion of one lead or many (the leads list's bulk action) to MQL, each
    routed to a rep with an SLA deadline, in one set-based stage change. A lead that cannot move
    is skipped with its reason (``strict``: 404/409 instead)."""
    if not is_marketer(actor):
        raise Forbidden("Only marketers and admins may mark a lead as MQL.")
    reason, _ = _reason(reason, "", RejectionReason, required=True, what="mark a lead as MQL")
    scores = {
        row[0]: row[1:]
        for row in Lead.objects.filter(pk__in=lead_ids).values_list("pk", "score", "fit_score", "engagement_score")
    }
    if strict and len(scores) < len(set(lead_ids)):
        missing = next(i for i in lead_ids if i not in scores)
        raise NotFound(f"No lead with id {missing}.")
    moves = [
        StageMove(
            lead_id=lead_id,
            to_stage=Stage.MQL,
            cause=TransitionCause.USER,
            actor=actor,
            cause_ref=f"user:{actor.username}",
            reason=reason,
            details={"manual": True, "score": score, "fit_score": fit, "engagement_score": engagement},
        )
        for lead_id, (score, fit, engagement) in scores.items()
    ]
    changes = leads_change_stage(moves=moves, strict=strict)
    for lead_id in lead_ids:
        if lead_id not in scores:
            changes.skipped[lead_id] = f"No lead with id {lead_id}."
    return changes


@transaction.atomic
def lead_accept(*, lead: Lead | int, actor, reason: str = "") -> Lead:
    """MQL/PQL → SAL by the owner rep (or an admin). An unowned MQL is claimed by the rep who accepts it."""
    locked = _lock_lead(lead)
    _ensure_can_act(locked, actor)
    lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.SAL,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=(reason or "").strip(),
        expected_from=(Stage.MQL, Stage.PQL),
        # An unowned MQL is taken by the rep who accepts it.
        owner=actor if is_sales(actor) else None,
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

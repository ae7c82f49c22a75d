"""Writes on leads: the one stage-change service and the routing it triggers.

Every stage change in LeadFunnel goes through :func:`lead_change_stage`: it
locks the lead row, checks the move against :mod:`leads.funnel`, writes a
:class:`StageTransition` and publishes ``lead.stage_changed`` to the outbox
(delivered after commit: webhooks, notifications, nurture enrol/exit).
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from leadfunnel.errors import Conflict
from leadfunnel.outbox import outbox_publish

from .funnel import AWAITING_SALES, MARKETING_OWNED, can_move, explain_illegal
from .models import Lead, SalesRepProfile, Stage, StageTransition, TransitionCause

DEFAULT_SLA_HOURS = 24


class IllegalTransition(Conflict):
    code = "illegal_transition"


def current_sla_hours() -> int:
    try:
        from scoring.selectors import scoring_settings_get
    except ImportError:
        return DEFAULT_SLA_HOURS
    return scoring_settings_get().sla_hours


def rep_pick_next(*, exclude_user_ids: tuple[int, ...] = ()) -> "object | None":
    """Round-robin among active sales reps who are not away and below capacity.

    The rep assigned longest ago (or never) goes first. Capacity counts the
    leads currently waiting for the rep (MQL/PQL).
    """
    user_model = get_user_model()
    reps = (
        user_model.objects.filter(is_active=True, groups__name="sales")
        .exclude(pk__in=exclude_user_ids)
        .exclude(rep_profile__is_away=True)
        .annotate(open_count=Count("owned_leads", filter=Q(owned_leads__stage__in=list(AWAITING_SALES))))
        .order_by(F("rep_profile__last_assigned_at").asc(nulls_first=True), "pk")
    )
    for rep in reps:
        capacity = SalesRepProfile.objects.filter(user=rep).values_list("capacity", flat=True).first()
        if capacity is None or rep.open_count < capacity:
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
    outbox_publish(
        topic="lead.stage_changed",
        payload={
            "lead_id": locked.pk,
            "transition_id": transition.pk,
            "from": from_stage,
            "to": to_stage,
            "cause": cause,
            "cause_ref": cause_ref,
            "owner_id": locked.owner_id,
            "cycle": locked.cycle,
            "at": now.isoformat(),
        },
    )
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

"""Service qualified leads: a customer who signals they want more is handed to sales as an
expansion opportunity.

Scoring decides (:class:`scoring.qualification.Expansion`, from ``EXPANSION_SIGNALS``, for
leads in stage ``customer``); :func:`leads_open_expansions` applies: one open
:class:`Opportunity` of kind ``expansion`` per customer (a customer with one open already is
left alone), given to a rep through the one assignment rule (:func:`.routing.leads_assign`,
cause ``expansion``: the rep who owns the account when they are still an active rep, else the
round-robin). The stage history stays truthful: the person remains a customer (no second
"became a customer" entry); the funnel report counts expansions apart.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from leadfunnel.errors import Forbidden, NotFound, ValidationFailed
from leadfunnel.models import LeadAssignment
from leadfunnel.roles import is_admin, is_sales
from scoring.qualification import Expansion

from ..models import Lead, Opportunity, Stage
from .routing import Reassignment, leads_assign


@transaction.atomic(savepoint=False)
def leads_open_expansions(*, expansions: list[Expansion]) -> list[Opportunity]:
    """Open an expansion opportunity for each customer (see the module docstring). Returns the
    opportunities opened. Queries when there is something to open: the leads (1), open expansions
    (1), active reps among their owners (1), the opportunities INSERT (1), then the assignment's."""
    wanted: dict[int, Expansion] = {}
    for expansion in expansions:
        wanted.setdefault(expansion.lead_id, expansion)
    if not wanted:
        return []
    leads = {
        row["id"]: row
        for row in Lead.objects.filter(pk__in=list(wanted), stage=Stage.CUSTOMER).values("id", "owner_id", "cycle")
    }
    already = set(
        Opportunity.objects.filter(
            lead_id__in=list(leads), kind=Opportunity.Kind.EXPANSION, status=Opportunity.Status.OPEN
        ).values_list("lead_id", flat=True)
    )
    fresh = [lead_id for lead_id in sorted(leads) if lead_id not in already]
    if not fresh:
        return []
    owners = {leads[lead_id]["owner_id"] for lead_id in fresh} - {None}
    active_reps = set(
        get_user_model()
        .objects.filter(pk__in=owners, is_active=True, groups__name="sales")
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    opportunities = Opportunity.objects.bulk_create(
        [
            Opportunity(
                lead_id=lead_id,
                kind=Opportunity.Kind.EXPANSION,
                cycle=leads[lead_id]["cycle"],
                signal=wanted[lead_id].signal[:200],
                signal_interaction_id=wanted[lead_id].interaction_id,
                buying_cycle="",
                influencer="",
                timeframe="",
                opportunity_size=0,
                next_step=wanted[lead_id].reason,
                created_at=now,
                updated_at=now,
            )
            for lead_id in fresh
        ]
    )
    leads_assign(
        reassignments=[
            Reassignment(
                lead_id=lead_id,
                owner_id=leads[lead_id]["owner_id"] if leads[lead_id]["owner_id"] in active_reps else None,
                reason=wanted[lead_id].reason,
            )
            for lead_id in fresh
        ],
        cause=LeadAssignment.Cause.EXPANSION,
        now=now,
    )
    return opportunities


@transaction.atomic
def expansion_close(*, opportunity: Opportunity | int, actor, won: bool, reason: str = "") -> Opportunity:
    """The rep who owns the customer (or an admin) closes an expansion: won (the bigger plan was
    sold) or lost (with a reason). The customer stays a customer either way."""
    if not isinstance(won, bool):
        raise ValidationFailed("won: Must be true or false.", fields={"won": ["Must be true or false."]})
    reason = (reason or "").replace("\x00", "").strip()
    if not won and not reason:
        raise ValidationFailed("reason: Say why the expansion did not happen.", fields={"reason": ["Required."]})
    opportunity_id = opportunity if isinstance(opportunity, int) else opportunity.pk
    locked = (
        Opportunity.objects.select_for_update(of=("self",))
        .select_related("lead")
        .filter(pk=opportunity_id, kind=Opportunity.Kind.EXPANSION)
        .first()
    )
    if locked is None:
        raise NotFound(f"No expansion opportunity with id {opportunity_id}.")
    if not is_admin(actor) and not (is_sales(actor) and locked.lead.owner_id == actor.pk):
        raise Forbidden("Only the sales rep who owns this customer, or an admin, may close the expansion.")
    if locked.status != Opportunity.Status.OPEN:
        raise ValidationFailed("This expansion is already closed.", fields={"won": ["Already closed."]})
    now = timezone.now()
    locked.status = Opportunity.Status.WON if won else Opportunity.Status.LOST
    locked.close_reason = reason[:5000]
    locked.closed_at = now
    locked.updated_at = now
    locked.save(update_fields=["status", "close_reason", "closed_at", "updated_at"])
    return locked

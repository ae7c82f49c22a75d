"""Set-based promotion: many leads into MQL/PQL with a constant number of queries.

:func:`leads_promote_many` does for a list of leads what
:func:`leads.services.lead_change_stage` does for one lead entering a stage that
awaits sales (MQL/PQL), with the same observable result:

- the leads are locked (one ``SELECT … FOR UPDATE``, in id order) and each move is
  checked against its ``expected_from`` and :func:`leads.funnel.can_move` under the lock;
  a move that is no longer legal is skipped (the per-lead path raises and its callers skip);
- each lead gets a rep round-robin, honouring away reps and capacity exactly as
  :func:`leads.services.rep_pick_next` would one call after the other (the reps are read
  once and the queue is advanced in memory); ``SalesRepProfile.last_assigned_at`` ends
  where the per-lead calls would leave it; a rep without a routing profile gets one;
- ``cycle`` goes up when a lead comes back from recycled/lost; owner, ``assigned_at``,
  the SLA due time and the response/breach marks are set as ``_assign`` sets them;
- one :class:`~leads.models.StageTransition` per lead with the given cause, reason and
  details, and one ``lead.stage_changed`` outbox message per lead with the same payload
  (webhooks, notifications and nurture triggers hang off that message).

Every lead gets its own instant (one microsecond apart, in the order given), so the
round-robin order stored in the reps' ``last_assigned_at`` stays unambiguous.

Queries: lock (1), reps (1), SLA hours (1), leads UPDATE (1), transitions INSERT (1),
outbox INSERT (1), rep profiles upsert (1) — whatever the number of leads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from leadfunnel.outbox import outbox_publish_many

from .funnel import AWAITING_SALES, can_move
from .models import Lead, SalesRepProfile, Stage, StageTransition
from .services import current_sla_hours, rep_queue, stage_changed_payload


@dataclass
class Promotion:
    """One lead to move into MQL/PQL, with what the transition should record."""

    lead_id: int
    to_stage: str
    cause: str
    cause_ref: str = ""
    reason: str = ""
    details: dict = field(default_factory=dict)
    # The stages the lead must still be in (under the lock) for the move to happen.
    expected_from: tuple[str, ...] | None = None


@dataclass
class PromotionResult:
    transitions: dict[int, StageTransition]  # lead id → its new transition, in the order given
    skipped: dict[int, str]  # lead id → why it was not moved


class _RepQueue:
    """``rep_pick_next`` called repeatedly, answered from one read of the reps."""

    def __init__(self) -> None:
        self.reps = list(rep_queue().annotate(last_assigned=F("rep_profile__last_assigned_at")))
        self.by_id = {rep.pk: rep for rep in self.reps}
        self.assigned_at: dict[int, datetime] = {}  # rep id → last assignment in this run

    def pick(self, at: datetime):
        for index, rep in enumerate(self.reps):
            if rep.capacity is None or rep.open_count < rep.capacity:
                rep.open_count += 1
                if rep.capacity is None:
                    # update_or_create makes the routing profile; from then on its capacity applies.
                    rep.capacity = SalesRepProfile._meta.get_field("capacity").get_default()
                self.assigned_at[rep.pk] = at
                # Re-queue it where rep_queue's order (last assignment, nulls first, then id) puts it now.
                del self.reps[index]
                rep.last_assigned = at
                key = (at, rep.pk)
                position = len(self.reps)
                for n, other in enumerate(self.reps):
                    if other.last_assigned is not None and (other.last_assigned, other.pk) > key:
                        position = n
                        break
                self.reps.insert(position, rep)
                return rep
        return None

    def release(self, rep_id: int | None) -> None:
        """A lead waiting for this rep moved on (it no longer counts against capacity)."""
        rep = self.by_id.get(rep_id)
        if rep is not None:
            rep.open_count -= 1

    def save(self) -> None:
        """What ``update_or_create(user=rep, defaults={"last_assigned_at": at})`` leaves, in one upsert."""
        if not self.assigned_at:
            return
        SalesRepProfile.objects.bulk_create(
            [SalesRepProfile(user_id=rep_id, last_assigned_at=at) for rep_id, at in self.assigned_at.items()],
            update_conflicts=True,
            unique_fields=["user"],
            update_fields=["last_assigned_at"],
        )


@transaction.atomic(savepoint=False)  # part of the caller's transaction when there is one
def leads_promote_many(
    *, promotions: list[Promotion], instances: dict[int, Lead] | None = None, now: datetime | None = None
) -> PromotionResult:
    """Move many leads into MQL/PQL at once (see the module docstring for what is written).

    ``instances``: the caller's Lead objects (by id), updated like ``lead_change_stage``
    updates the instance it is given.
    """
    result = PromotionResult(transitions={}, skipped={})
    wanted: dict[int, Promotion] = {}
    for promotion in promotions:
        if promotion.to_stage not in AWAITING_SALES:
            raise ValueError(f"leads_promote_many moves leads into MQL/PQL, not {promotion.to_stage!r}")
        wanted.setdefault(promotion.lead_id, promotion)
    if not wanted:
        return result
    # Lock in id order (as every other multi-lead writer does): no deadlocks between them.
    locked = {
        row[0]: row
        for row in Lead.objects.select_for_update()
        .filter(pk__in=list(wanted))
        .order_by("pk")
        .values_list("id", "stage", "cycle", "owner_id")
    }
    moves = []
    for lead_id, promotion in wanted.items():
        row = locked.get(lead_id)
        if row is None:
            result.skipped[lead_id] = "not found"
            continue
        from_stage = row[1]
        if promotion.expected_from is not None and from_stage not in promotion.expected_from:
            result.skipped[lead_id] = f"is {from_stage}"
            continue
        if not can_move(from_stage, promotion.to_stage):
            result.skipped[lead_id] = f"cannot move from {from_stage} to {promotion.to_stage}"
            continue
        moves.append((promotion, row))
    if not moves:
        return result

    base = now or timezone.now()
    sla = timedelta(hours=current_sla_hours())
    reps = _RepQueue()
    lead_rows = []  # (id, at, cycle, owner_id, assigned_at, sla_due_at)
    transitions = []
    for n, (promotion, (lead_id, from_stage, cycle, old_owner_id)) in enumerate(moves):
        at = base + timedelta(microseconds=n)
        if from_stage in (Stage.RECYCLED, Stage.LOST):
            cycle += 1
        rep = reps.pick(at)
        if from_stage in AWAITING_SALES:
            reps.release(old_owner_id)  # counted for its old rep while the new one was picked
        owner_id = rep.pk if rep is not None else None
        lead_rows.append(
            (lead_id, promotion.to_stage, at, cycle, owner_id, at if rep else None, at + sla if rep else None)
        )
        transitions.append(
            StageTransition(
                lead_id=lead_id,
                from_stage=from_stage,
                to_stage=promotion.to_stage,
                at=at,
                actor=None,
                cause=promotion.cause,
                cause_ref=promotion.cause_ref,
                reason=promotion.reason,
                reason_code="",
                cycle=cycle,
                owner_id=owner_id,
                details=promotion.details or {},
            )
        )
    _update_leads(lead_rows)
    reps.save()
    StageTransition.objects.bulk_create(transitions)
    outbox_publish_many(messages=[("lead.stage_changed", stage_changed_payload(t)) for t in transitions])
    instances = instances or {}
    for (lead_id, stage, at, cycle, owner_id, assigned_at, sla_due_at), transition in zip(
        lead_rows, transitions, strict=True
    ):
        result.transitions[lead_id] = transition
        instance = instances.get(lead_id)
        if instance is not None:
            instance.stage = stage
            instance.stage_changed_at = at
            instance.cycle = cycle
            instance.owner_id = owner_id
            instance.assigned_at = assigned_at
            instance.sla_due_at = sla_due_at
            instance.sla_breached_at = None
            instance.sla_escalated_at = None
            instance.first_response_at = None
    return result


def _update_leads(rows: list[tuple]) -> None:
    """One UPDATE for the moved leads (PostgreSQL); a bulk update elsewhere."""
    if connection.vendor == "postgresql":
        table = Lead._meta.db_table
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        sql = (
            f"UPDATE {table} AS l SET stage = v.stage, stage_changed_at = v.at::timestamptz, "  # noqa: S608
            "updated_at = v.at::timestamptz, cycle = v.cycle::integer, owner_id = v.owner_id::integer, "
            "assigned_at = v.assigned_at::timestamptz, sla_due_at = v.sla_due_at::timestamptz, "
            "sla_breached_at = NULL, sla_escalated_at = NULL, first_response_at = NULL "
            f"FROM (VALUES {values}) AS v(id, stage, at, cycle, owner_id, assigned_at, sla_due_at) "
            "WHERE l.id = v.id::bigint"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in rows for value in row])
        return
    objs = [
        Lead(
            pk=lead_id,
            stage=stage,
            stage_changed_at=at,
            updated_at=at,
            cycle=cycle,
            owner_id=owner_id,
            assigned_at=assigned_at,
            sla_due_at=sla_due_at,
            sla_breached_at=None,
            sla_escalated_at=None,
            first_response_at=None,
        )
        for lead_id, stage, at, cycle, owner_id, assigned_at, sla_due_at in rows
    ]
    Lead.objects.bulk_update(
        objs,
        [
            "stage",
            "stage_changed_at",
            "updated_at",
            "cycle",
            "owner",
            "assigned_at",
            "sla_due_at",
            "sla_breached_at",
            "sla_escalated_at",
            "first_response_at",
        ],
        batch_size=500,
    )

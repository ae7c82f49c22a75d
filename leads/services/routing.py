"""Assigning a sales rep: the one rule, for one lead or many.

Who gets a lead: a chosen rep, or the round-robin over the active sales reps who are not away
and below capacity (the rep assigned longest ago, or never, first). Territory rules
(:mod:`leads.territories`) narrow the round-robin: a lead whose country / company size matches
one or more free reps' rules goes to the next of those reps in turn; with no free matching rep,
or no rules at all, it goes to the next free rep of everyone. What an assignment writes:
the lead's owner, ``assigned_at`` and a fresh SLA deadline (the response and breach marks
cleared), the rep's ``last_assigned_at`` (so the round-robin moves on), the ownership history
and a ``lead.assigned`` outbox message (the rep's notification hangs off it).

Entering MQL/PQL assigns through :class:`RepRoster` inside the stage change (its transition is
the history); :func:`leads_assign` reassigns leads that keep their stage (SLA, a sequence's
``assign`` action, by hand) and records a :class:`~leadfunnel.models.LeadAssignment` each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from leadfunnel.audit import audit_record_many
from leadfunnel.models import LeadAssignment
from leadfunnel.outbox import outbox_publish_many
from leadfunnel.sql import bulk_update

from ..funnel import AWAITING_SALES
from ..models import Lead, SalesRepProfile
from ..selectors import current_sla_hours
from ..territories import ROUTING_FIELDS, TerritoryRule, lead_routing_facts

# The lead columns an assignment sets (in this order in :func:`assignment_columns`).
ASSIGNMENT_COLUMNS = (
    "owner_id",
    "assigned_at",
    "sla_due_at",
    "sla_breached_at",
    "sla_escalated_at",
    "first_response_at",
)


def rep_queue(*, exclude_user_ids: tuple[int, ...] = ()):
    """The active sales reps who are not away, in round-robin order (assigned longest ago, or
    never, first), each annotated with ``open_count`` (leads waiting for the rep, MQL/PQL),
    ``capacity`` (None: no routing profile yet, so no limit), ``last_assigned`` and the
    territory rules (``rule_territories``, ``rule_company_sizes``)."""
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
                    Lead.objects.filter(owner=OuterRef("pk"), stage__in=list(AWAITING_SALES), erased_at__isnull=True)
                    .order_by()
                    .values("owner")
                    .annotate(n=Count("pk"))
                    .values("n")[:1]
                ),
                0,
            ),
            capacity=F("rep_profile__capacity"),
            last_assigned=F("rep_profile__last_assigned_at"),
            rule_territories=F("rep_profile__territories"),
            rule_company_sizes=F("rep_profile__company_sizes"),
        )
        .order_by(F("rep_profile__last_assigned_at").asc(nulls_first=True), "pk")
    )


class RepRoster:
    """The round-robin for a batch of assignments: the reps read once, the queue advanced in
    memory exactly as one assignment after the other would advance it, saved in one upsert.
    Territory rules are read with the reps and matched in memory (a lead's country and company
    size come with the caller's locked read, :data:`ROUTING_FIELDS`): no query per lead."""

    def __init__(self) -> None:
        self.reps = list(rep_queue())
        self.by_id = {rep.pk: rep for rep in self.reps}
        self.rules = {rep.pk: TerritoryRule.of(rep.rule_territories, rep.rule_company_sizes) for rep in self.reps}
        self.any_rules = any(rule.configured for rule in self.rules.values())
        self.assigned_at: dict[int, datetime] = {}  # rep id → its last assignment in this batch

    def next_free(self, *, exclude: tuple[int, ...] = (), lead: dict | None = None):
        """The next free rep in turn; with ``lead`` (a row with :data:`ROUTING_FIELDS`), the next
        free rep whose territory rules match it first."""
        if lead is not None and self.any_rules:
            country, company_size = lead_routing_facts(lead)
            for rep in self.reps:
                if self._free(rep, exclude) and self.rules[rep.pk].matches(country=country, company_size=company_size):
                    return rep
        for rep in self.reps:
            if self._free(rep, exclude):
                return rep
        return None

    @staticmethod
    def _free(rep, exclude: tuple[int, ...]) -> bool:
        return rep.pk not in exclude and (rep.capacity is None or rep.open_count < rep.capacity)

    def pick(self, at: datetime, *, exclude: tuple[int, ...] = (), lead: dict | None = None) -> int | None:
        """The next rep in turn for ``lead`` (None: nobody is free), counted as assigned at ``at``."""
        rep = self.next_free(exclude=exclude, lead=lead)
        if rep is None:
            return None
        self.took(rep.pk, at)
        return rep.pk

    def took(self, rep_id: int, at: datetime) -> None:
        """``rep_id`` was given a lead at ``at`` (picked, or chosen by a person or a sequence)."""
        self.assigned_at[rep_id] = at
        rep = self.by_id.get(rep_id)
        if rep is None:  # away, inactive or not in the rotation: only its profile moves
            return
        rep.open_count += 1
        if rep.capacity is None:
            # The upsert below makes the routing profile; from then on its capacity applies.
            rep.capacity = SalesRepProfile._meta.get_field("capacity").get_default()
        # Re-queue it where rep_queue's order (last assignment, nulls first, then id) puts it now.
        self.reps.remove(rep)
        rep.last_assigned = at
        key = (at, rep.pk)
        position = len(self.reps)
        for n, other in enumerate(self.reps):
            if other.last_assigned is not None and (other.last_assigned, other.pk) > key:
                position = n
                break
        self.reps.insert(position, rep)

    def release(self, rep_id: int | None) -> None:
        """A lead waiting for this rep moved on (it no longer counts against capacity)."""
        rep = self.by_id.get(rep_id)
        if rep is not None:
            rep.open_count -= 1

    def save(self) -> None:
        """Every rep's ``last_assigned_at`` where the batch left it (a profile made if missing)."""
        if not self.assigned_at:
            return
        SalesRepProfile.objects.bulk_create(
            [SalesRepProfile(user_id=rep_id, last_assigned_at=at) for rep_id, at in self.assigned_at.items()],
            update_conflicts=True,
            unique_fields=["user"],
            update_fields=["last_assigned_at"],
        )


def rep_pick_next(*, exclude_user_ids: tuple[int, ...] = ()):
    """The rep the round-robin gives the next lead to (None: nobody is free); nothing is written."""
    return RepRoster().next_free(exclude=exclude_user_ids)


def assignment_columns(owner_id: int | None, at: datetime, sla: timedelta, *, escalated: bool = False) -> tuple:
    """The lead's :data:`ASSIGNMENT_COLUMNS` after being given to ``owner_id`` (None: nobody free)."""
    if owner_id is None:
        return (None, None, None, None, None, None)
    return (owner_id, at, at + sla, None, at if escalated else None, None)


def assigned_message(*, lead_id: int, owner_id: int, previous_owner_id: int | None, at: datetime, sla_due_at,
                     cause: str, reason: str, stage: str, cycle: int, transition_id: int | None = None,
                     assignment_id: int | None = None) -> tuple[str, dict]:  # fmt: skip
    """The ``lead.assigned`` outbox message: the rep is told (``leads.handlers``)."""
    return (
        "lead.assigned",
        {
            "lead_id": lead_id,
            "owner_id": owner_id,
            "previous_owner_id": previous_owner_id,
            "at": at.isoformat(),
            "sla_due_at": sla_due_at.isoformat() if sla_due_at else None,
            "cause": cause,
            "reason": reason,
            "stage": stage,
            "cycle": cycle,
            "transition_id": transition_id,
            "assignment_id": assignment_id,
        },
    )


@dataclass
class Reassignment:
    """One lead to give to a rep while it keeps its stage. ``owner_id`` None: the round-robin,
    skipping the lead's current owner."""

    lead_id: int
    owner_id: int | None = None
    reason: str = ""


_LOCKED = ("id", "stage", "cycle", "owner_id", *ASSIGNMENT_COLUMNS[1:], *ROUTING_FIELDS)


@transaction.atomic(savepoint=False)
def leads_assign(
    *, reassignments: list[Reassignment], cause: str, actor=None, now: datetime | None = None, check=None
) -> dict[int, LeadAssignment]:
    """Give leads to reps (see the module docstring). Returns the recorded assignment per lead
    moved; a lead is skipped when nobody else is free, or when ``check(locked_row)`` is false
    (e.g. the SLA sweep re-checks the breach under the lock).

    Queries: lock (1), reps (1), SLA hours (1), leads UPDATE (1), rep profiles (1), history (1),
    audit (1), outbox (1) — whatever the number of leads.
    """
    wanted = {r.lead_id: r for r in reassignments}
    if not wanted:
        return {}
    rows = list(
        Lead.objects.select_for_update(of=("self",)).filter(pk__in=list(wanted)).order_by("pk").values(*_LOCKED)
    )
    rows = [row for row in rows if check is None or check(row)]
    if not rows:
        return {}
    base = now or timezone.now()
    sla = timedelta(hours=current_sla_hours())
    roster = RepRoster()
    escalated = cause == LeadAssignment.Cause.SLA
    updates, history, moved = [], [], []
    for n, row in enumerate(rows):
        at = base + timedelta(microseconds=n)
        request = wanted[row["id"]]
        previous = row["owner_id"]
        if request.owner_id is not None:
            owner_id = request.owner_id
            roster.took(owner_id, at)
        else:
            owner_id = roster.pick(at, exclude=(previous,) if previous else (), lead=row)
        if owner_id is None:
            continue
        if row["stage"] in AWAITING_SALES:
            roster.release(previous)
            columns = assignment_columns(owner_id, at, sla, escalated=escalated)
        else:  # not waiting for an answer (a SAL a sequence hands over, a customer's expansion): no SLA
            # clock to start, so the response clock's columns (assigned_at included) stay as they were
            # and the SLA report keeps the lead's real first assignment; the history records this one.
            columns = (owner_id, *(row[name] for name in ASSIGNMENT_COLUMNS[1:]))
        updates.append((row["id"], *columns, at))
        history.append(
            LeadAssignment(
                lead_id=row["id"],
                from_owner_id=previous,
                to_owner_id=owner_id,
                at=at,
                cause=cause,
                reason=request.reason,
                cycle=row["cycle"],
                actor=actor if getattr(actor, "is_authenticated", False) else None,
            )
        )
        moved.append((row, columns))
    if not updates:
        return {}
    bulk_update(Lead, (*ASSIGNMENT_COLUMNS, "updated_at"), updates)
    roster.save()
    LeadAssignment.objects.bulk_create(history)
    messages = []
    for (row, columns), assignment in zip(moved, history, strict=True):
        messages.append(
            assigned_message(
                lead_id=row["id"],
                owner_id=assignment.to_owner_id,
                previous_owner_id=assignment.from_owner_id,
                at=assignment.at,
                sla_due_at=columns[2],
                cause=cause,
                reason=assignment.reason,
                stage=row["stage"],
                cycle=row["cycle"],
                assignment_id=assignment.pk,
            )
        )
    audit_record_many(
        actor=actor,
        action="lead.reassigned",
        object_type="leads.lead",
        items=[
            (str(a.lead_id), {"owner": [a.from_owner_id, a.to_owner_id], "cause": cause, "assignment_id": a.pk})
            for a in history
        ],
    )
    outbox_publish_many(messages=messages)
    return {a.lead_id: a for a in history}

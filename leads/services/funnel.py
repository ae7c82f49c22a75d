"""The funnel's two writes, each one set-based function: entering the funnel and changing stage.

:func:`leads_change_stage` is the one way a lead's stage changes (the sales workflow, scoring's
qualifications, a sequence's ``set_stage`` action, by hand): it locks the leads, checks each move
against :mod:`leads.funnel`, assigns reps to leads entering MQL/PQL (:mod:`.routing`), writes one
:class:`StageTransition` per lead and publishes ``lead.stage_changed`` (webhooks, notifications,
nurture enrol/exit hang off it, after commit). :func:`lead_change_stage` is the same function
with one move. :func:`leads_enter_funnel` is the one way a lead comes to exist: the lead row, the
first line of its history and ``lead.created``, for a form, the API, an event's unknown email or
an import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadfunnel.errors import Conflict, NotFound
from leadfunnel.outbox import outbox_publish_many
from leadfunnel.sql import bulk_update
from scoring.qualification import Qualification

from .. import sql
from ..funnel import AWAITING_SALES, MARKETING_OWNED, can_move, explain_illegal
from ..intake import company_name_from_domain
from ..models import Company, Lead, LeadAlias, Stage, StageTransition, TransitionCause
from ..territories import ROUTING_FIELDS
from .routing import ASSIGNMENT_COLUMNS, RepRoster, assigned_message, assignment_columns, current_sla_hours


class IllegalTransition(Conflict):
    code = "illegal_transition"


@dataclass
class StageMove:
    """One lead to move. ``owner_id``: for a move into MQL/PQL the rep to assign (default: the
    round-robin); for another move the rep who takes an unowned lead (a rep accepting it)."""

    lead_id: int
    to_stage: str
    cause: str = TransitionCause.SYSTEM
    actor: Any = None
    cause_ref: str = ""
    reason: str = ""
    reason_code: str = ""
    details: dict | None = None
    expected_from: tuple[str, ...] | None = None
    owner_id: int | None = None


@dataclass
class StageChanges:
    transitions: dict[int, StageTransition] = field(default_factory=dict)  # lead id → its new transition
    skipped: dict[int, str] = field(default_factory=dict)  # lead id → why it did not move


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


def _why_not(move: StageMove, from_stage: str) -> str | None:
    if move.expected_from is not None and from_stage not in move.expected_from:
        if not can_move(from_stage, move.to_stage):
            return explain_illegal(from_stage, move.to_stage)
        expected = " or ".join(Stage(s).label for s in move.expected_from)
        return f"This lead is {Stage(from_stage).label}, not {expected}."
    if not can_move(from_stage, move.to_stage):
        return explain_illegal(from_stage, move.to_stage)
    return None


_MOVE_COLUMNS = ("stage", "stage_changed_at", "updated_at", "cycle", *ASSIGNMENT_COLUMNS)
_LOCKED = ("id", "stage", "cycle", "erased_at", *ASSIGNMENT_COLUMNS, *ROUTING_FIELDS)


@transaction.atomic(savepoint=False)  # part of the caller's transaction when there is one
def leads_change_stage(
    *,
    moves: list[StageMove],
    strict: bool = False,
    now: datetime | None = None,
    instances: dict[int, Lead] | None = None,
) -> StageChanges:
    """Move leads (see the module docstring). A move that is not legal under the lock raises
    :class:`IllegalTransition` (409) with ``strict``, else is skipped with its reason.

    Each lead gets its own instant (a microsecond apart, in the order given), so the round-robin
    order stored in the reps' ``last_assigned_at`` stays unambiguous. ``instances``: the caller's
    Lead objects by id, updated to what is stored.

    Queries: lock (1); entering MQL/PQL adds reps (1), SLA hours (1) and rep profiles (1);
    leads UPDATE (1), transitions INSERT (1), outbox INSERT (1) — whatever the number of leads.
    """
    result = StageChanges()
    wanted: dict[int, StageMove] = {}
    for move in moves:
        wanted.setdefault(move.lead_id, move)
    if not wanted:
        return result
    # Lock in id order (as every multi-lead writer does): concurrent batches cannot deadlock.
    locked = {
        row["id"]: row
        for row in Lead.objects.select_for_update(of=("self",))
        .filter(pk__in=list(wanted))
        .order_by("pk")
        .values(*_LOCKED)
    }
    legal: list[tuple[StageMove, dict]] = []
    for lead_id, move in wanted.items():
        row = locked.get(lead_id)
        if row is None:
            why: str | None = f"No lead with id {lead_id}."
        elif row["erased_at"] is not None:
            why = "This lead's data was erased: its stage no longer changes."
        else:
            why = _why_not(move, row["stage"])
        if why is None:
            legal.append((move, row))
        elif strict:
            raise NotFound(why) if row is None else IllegalTransition(why)
        else:
            result.skipped[lead_id] = why
    if not legal:
        return result

    base = now or timezone.now()
    routing = any(move.to_stage in AWAITING_SALES for move, _ in legal)
    roster = RepRoster() if routing else None
    sla = timedelta(hours=current_sla_hours()) if routing else timedelta(0)
    updates, transitions, assigned = [], [], []
    for n, (move, row) in enumerate(legal):
        at = base + timedelta(microseconds=n)
        from_stage, to_stage, cycle = row["stage"], move.to_stage, row["cycle"]
        owner = dict(zip(ASSIGNMENT_COLUMNS, (row[c] for c in ASSIGNMENT_COLUMNS), strict=True))
        if to_stage in AWAITING_SALES:
            if from_stage in (Stage.RECYCLED, Stage.LOST):
                cycle += 1
            if move.owner_id is not None:
                roster.took(move.owner_id, at)
                rep_id = move.owner_id
            else:
                rep_id = roster.pick(at, lead=row)
            if from_stage in AWAITING_SALES:
                roster.release(row["owner_id"])  # counted for its old rep while the new one was picked
            owner = dict(zip(ASSIGNMENT_COLUMNS, assignment_columns(rep_id, at, sla), strict=True))
            if rep_id is not None:
                assigned.append(len(transitions))
        else:
            if move.owner_id is not None and owner["owner_id"] is None:
                owner.update(owner_id=move.owner_id, assigned_at=at)  # an unowned lead taken by its rep
            if from_stage in AWAITING_SALES and to_stage in (Stage.SAL, Stage.RECYCLED, Stage.DISQUALIFIED):
                owner.update(first_response_at=at, sla_due_at=None)
            if to_stage in MARKETING_OWNED or to_stage == Stage.DISQUALIFIED:
                owner.update(owner_id=None, sla_due_at=None)  # back to marketing (or out): no rep owns it
        updates.append((row["id"], to_stage, at, at, cycle, *(owner[c] for c in ASSIGNMENT_COLUMNS)))
        actor = move.actor if move.actor is not None and getattr(move.actor, "is_authenticated", False) else None
        transitions.append(
            StageTransition(
                lead_id=row["id"],
                from_stage=from_stage,
                to_stage=to_stage,
                at=at,
                actor=actor,
                cause=move.cause,
                cause_ref=move.cause_ref,
                reason=move.reason,
                reason_code=move.reason_code,
                cycle=cycle,
                owner_id=owner["owner_id"],
                details=move.details or {},
            )
        )
    bulk_update(Lead, _MOVE_COLUMNS, updates)
    if roster is not None:
        roster.save()
    StageTransition.objects.bulk_create(transitions)
    # Per lead, in the order moved: its stage change, then its assignment (as one move at a time gives).
    assigned_set = set(assigned)
    messages = []
    for index, t in enumerate(transitions):
        messages.append(("lead.stage_changed", stage_changed_payload(t)))
        if index in assigned_set:
            row = updates[index]
            messages.append(
                assigned_message(
                    lead_id=t.lead_id,
                    owner_id=t.owner_id,
                    previous_owner_id=locked[t.lead_id]["owner_id"],
                    at=t.at,
                    sla_due_at=row[5 + ASSIGNMENT_COLUMNS.index("sla_due_at")],
                    cause="routing",
                    reason=t.reason,
                    stage=t.to_stage,
                    cycle=t.cycle,
                    transition_id=t.pk,
                )
            )
    outbox_publish_many(messages=messages)
    instances = instances or {}
    for row, transition in zip(updates, transitions, strict=True):
        result.transitions[transition.lead_id] = transition
        instance = instances.get(transition.lead_id)
        if instance is not None:
            for name, value in zip(_MOVE_COLUMNS, row[1:], strict=True):
                setattr(instance, name, value)
    return result


@transaction.atomic  # a savepoint: a caller may catch the 409 and go on with its transaction
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
    """Move one lead: :func:`leads_change_stage` with one move, raising :class:`IllegalTransition`
    (409) for an illegal one. ``owner``: the rep to assign when entering MQL/PQL."""
    lead_id = lead if isinstance(lead, int) else lead.pk
    move = StageMove(
        lead_id=lead_id,
        to_stage=to_stage,
        cause=cause,
        actor=actor,
        cause_ref=cause_ref,
        reason=reason,
        reason_code=reason_code,
        details=details,
        expected_from=expected_from,
        owner_id=getattr(owner, "pk", owner),
    )
    instances = {} if isinstance(lead, int) else {lead_id: lead}
    return leads_change_stage(moves=[move], strict=True, instances=instances).transitions[lead_id]


def leads_apply_qualifications(
    *, qualifications: list[Qualification], instances: dict[int, Lead] | None = None
) -> StageChanges:
    """Apply scoring's decisions: each qualified lead enters MQL/PQL (a rep, an SLA deadline)."""
    moves = [
        StageMove(
            lead_id=q.lead_id,
            to_stage=q.to_stage,
            cause=TransitionCause.RULE,
            cause_ref=q.cause_ref,
            reason=q.reason,
            details=q.details,
            expected_from=q.expected_from,
        )
        for q in qualifications
    ]
    return leads_change_stage(moves=moves, instances=instances)


# --- entering the funnel ---------------------------------------------------------------------------


@dataclass
class Entry:
    """A person entering the funnel: an unsaved visitor and what its first history line says.
    ``company_domain``: link the lead to the company owning this domain, if there is one."""

    lead: Lead
    cause: str
    cause_ref: str
    reason: str
    actor: Any = None
    company_domain: str | None = None


@dataclass
class Entered:
    leads: dict[str, Lead]  # email → the stored lead (locked until the transaction ends)
    created: set[int]  # ids of the leads created here
    messages: list[tuple[str, dict]] = field(default_factory=list)  # lead.created, when not published here


@transaction.atomic(savepoint=False)
def leads_enter_funnel(
    *, entries: list[Entry], touch: bool = True, publish: bool = True, resolve_aliases: bool = True
) -> Entered:
    """Create the leads that do not exist yet, with their first history line (from nothing to
    visitor) and ``lead.created``; answer every lead, new or existing, locked.

    Safe under concurrency: one ``INSERT … ON CONFLICT (email) DO UPDATE … RETURNING`` creates or
    finds (and locks) every row, so concurrent submissions of one new email make one lead. An
    existing lead's ``last_activity_at`` only moves forward (``touch``: and its ``updated_at`` is
    set). An email that is a :class:`LeadAlias` (a merged lead's) resolves to its survivor, and
    ``leads`` answers it under the email given as well (``resolve_aliases`` False: the caller
    resolved them already). ``publish`` False leaves the ``lead.created`` messages in the answer for the caller to
    publish with its own (one outbox statement per request on the intake).
    Queries: the alias lookup (1, unless the caller did it), the upsert (1), the history (1) and the outbox (1) when a lead is new.
    """
    if not entries:
        return Entered(leads={}, created=set())
    # A merged lead's email is an alias of its survivor: the entry becomes the survivor's.
    aliases = emails_resolve_aliases({entry.lead.email for entry in entries}) if resolve_aliases else {}
    unique: dict[str, Entry] = {}
    for entry in entries:
        if entry.lead.email in aliases:
            entry.lead.email = aliases[entry.lead.email]
        unique.setdefault(entry.lead.email, entry)
    ordered = sorted(unique.values(), key=lambda e: e.lead.email)  # one lock order for every writer
    rows = sql.leads_upsert([(e.lead, e.company_domain) for e in ordered], touch=touch)
    leads: dict[str, Lead] = {}
    created: set[int] = set()
    for lead, was_created in rows:
        leads[lead.email] = lead
        if was_created:
            created.add(lead.pk)
    for alias, survivor_email in aliases.items():
        leads[alias] = leads[survivor_email]
    if created:
        history, messages = [], []
        for entry in ordered:
            lead = leads[entry.lead.email]
            if lead.pk not in created:
                continue
            actor = entry.actor if getattr(entry.actor, "is_authenticated", False) else None
            history.append(
                StageTransition(
                    lead_id=lead.pk,
                    from_stage="",
                    to_stage=lead.stage,
                    at=lead.created_at,
                    actor=actor,
                    cause=entry.cause,
                    cause_ref=entry.cause_ref[:100],
                    reason=entry.reason,
                    cycle=lead.cycle,
                )
            )
            form_slug = entry.cause_ref.removeprefix("form:") if entry.cause_ref.startswith("form:") else None
            messages.append(("lead.created", {"lead_id": lead.pk, "source": lead.source, "form_slug": form_slug}))
        StageTransition.objects.bulk_create(history)
        if publish:
            outbox_publish_many(messages=messages)
            messages = []
        return Entered(leads=leads, created=created, messages=messages)
    return Entered(leads=leads, created=created)


def emails_resolve_aliases(emails: set[str]) -> dict[str, str]:
    """{alias email: the surviving lead's email} for those of ``emails`` that are aliases of a
    merged lead (one query). The one place intake resolves an alias; see ``leads.services.merge``."""
    if not emails:
        return {}
    return dict(LeadAlias.objects.filter(email__in=list(emails)).values_list("email", "lead__email"))


def companies_ensure(*, profiles: dict[str, dict[str, str]], now: datetime) -> dict[str, int]:
    """The company id for each email domain, creating the companies seen for the first time
    (named from the profile or the domain). Race-safe; two statements whatever the count."""
    if not profiles:
        return {}
    rows = [
        Company(
            name=(p.get("company_name") or company_name_from_domain(domain))[:200],
            domain=domain,
            size_band=p.get("company_size", ""),
            industry=p.get("industry", ""),
            country=p.get("country", ""),
            city=p.get("city", ""),
            created_at=now,
            updated_at=now,
        )
        for domain, p in sorted(profiles.items())
    ]
    return sql.companies_insert_missing(rows)

"""What one executor pass holds in memory: the rows it plans and the batch that carries them.

A batch writes a thousand executions and messages at once, so they are plain slotted objects
(named like their columns, inserted by :mod:`.statements`) rather than model instances; the
planner and the actions share them, and the helpers that add an execution to the batch or
cache a lead's merge context once per batch.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leads.models import Lead

from ..models import Enrollment, ExecutionState, Sequence, Step
from ..rendering import merge_context
from .abtest import AbState

DAY = timedelta(hours=24)


@dataclass(slots=True, eq=False)
class _Execution:
    """A StepExecution row planned in this batch (a plain object: a batch writes a thousand)."""

    enrollment_id: int
    sequence_id: int
    step_id: int
    position: int
    run: int
    kind: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    next_attempt_at: datetime | None
    detail: dict
    error: str = ""
    attempts: int = 0
    pk: int | None = None


@dataclass(slots=True, eq=False)
class _Outgoing:
    """A Message row planned in this batch, with what sending it needs (its lead, its execution,
    the unsubscribe URL already signed for the body, reused for the List-Unsubscribe header)."""

    execution: _Execution | None
    lead: Lead
    sequence_id: int
    position: int
    purpose: str
    channel: str
    to: str
    subject: str
    body: str
    text_body: str
    links: list[str]
    token: str
    created_at: datetime
    unsubscribe_url: str | None = None
    variant: str = ""  # "a" / "b" for an A/B-tested email step
    pk: int | None = None

    @property
    def lead_id(self) -> int:
        return self.lead.pk

    @property
    def execution_id(self) -> int | None:
        return self.execution.pk if self.execution is not None else None


@dataclass
class _Batch:
    now: datetime
    claim_token: str
    sequences: dict[int, Sequence]
    steps: dict[int, dict[int, Step]]
    sent_today: dict[int, tuple[int, datetime]]
    lease: timedelta = timedelta(seconds=120)
    default_cap: int = 0
    executions: list[_Execution] = field(default_factory=list)
    messages: list[_Outgoing] = field(default_factory=list)
    contexts: dict[int, dict[str, str]] = field(default_factory=dict)
    # Leads that may not be sent marketing now (lead id → "no_consent" | "suppressed"), checked once
    # for the batch; the message steps they reach are skipped, and each skip is put on the timeline.
    refusals: dict[int, str] = field(default_factory=dict)
    skipped_events: list[dict] = field(default_factory=list)
    ab: dict[int, AbState] = field(default_factory=dict)  # A/B-tested steps by step id


def _record(
    enrollment: Enrollment, step: Step, batch: _Batch, *, state: str, detail: dict | None = None, error: str = ""
) -> _Execution:
    enrollment.run += 1
    execution = _Execution(
        enrollment_id=enrollment.pk,
        sequence_id=enrollment.sequence_id,
        step_id=step.pk,
        position=step.position,
        run=enrollment.run,
        kind=step.kind,
        state=state,
        created_at=batch.now,
        finished_at=None if state == ExecutionState.PENDING else batch.now,
        next_attempt_at=batch.now + batch.lease if state == ExecutionState.PENDING else None,
        detail=detail or {},
        error=error,
    )
    batch.executions.append(execution)
    return execution


def _context(lead: Lead, batch: _Batch) -> dict[str, str]:
    context = batch.contexts.get(lead.pk)
    if context is None:
        context = batch.contexts[lead.pk] = merge_context(lead)
    return context

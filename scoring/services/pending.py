"""The deferred scoring queue (``SCORING_DEFERRED``): events stored by a request and scored after
commit by a worker, a batch at a time, with the same code as live scoring.

The leads app adds rows when it stores events (in the same statement where it can) and claims
them in its drain; claiming deletes the rows in the claimer's transaction, so a worker that dies
mid-batch leaves them for the next one and a batch is never scored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from leadfunnel.sql import bulk_insert
from leads.models import Interaction

from ..models import PendingScore
from ..sql import QueuedEvent
from ..sql import pending_claim as claim_rows


@dataclass
class PendingBatch:
    interactions: list[QueuedEvent] = field(default_factory=list)
    profile_lead_ids: set[int] = field(default_factory=set)
    oldest: datetime | None = None  # when the oldest claimed event was queued
    size: int = 0


def pending_add(*, interactions: list[Interaction], profile_lead_ids: set[int] | frozenset = frozenset()) -> None:
    """Queue stored interactions (and profile changes) to be scored after commit: one INSERT."""
    rows = [(i.lead_id, i.pk, i.lead_id in profile_lead_ids) for i in interactions]
    with_interactions = {i.lead_id for i in interactions}
    rows += [(lead_id, None, True) for lead_id in sorted(set(profile_lead_ids) - with_interactions)]
    bulk_insert(PendingScore, ("lead_id", "interaction_id", "profile"), rows)


def pending_claim(*, limit: int) -> PendingBatch | None:
    """The next queued events (oldest first), claimed for the caller's transaction; None when the
    queue is empty."""
    rows, events = claim_rows(limit)
    if not rows:
        return None
    return PendingBatch(
        interactions=events,
        profile_lead_ids={lead_id for lead_id, profile, _ in rows if profile},
        oldest=min(queued_at for *_, queued_at in rows),
        size=len(rows),
    )


def pending_count() -> int:
    return PendingScore.objects.count()

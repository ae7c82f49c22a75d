"""Scores and stages follow a lead's events: scoring decides, the funnel applies.

:func:`leads_score` scores new interactions and profile changes (any number of leads, the
single event being a batch of one) and moves the leads scoring qualified into MQL/PQL (and opens
expansion opportunities for the customers scoring saw signal expansion). Where it
runs is the call site's choice: inside the request, or (``SCORING_DEFERRED``) after commit, where
:func:`leads_score_pending` runs the very same function over a batch of queued events.
:func:`leads_promote_qualified` moves the leads a full recompute qualified, a batch at a time.
"""

from django.conf import settings
from django.db import transaction

from leadfunnel.kick import kick_once, kick_release
from scoring.services import (
    pending_claim,
    recompute_job_promoted,
    recompute_qualifications,
    score_leads,
)

from ..models import Interaction, Lead
from .expansion import leads_open_expansions
from .funnel import StageChanges, leads_apply_qualifications


def leads_score(
    *,
    interactions: list[Interaction] | tuple = (),
    profile_lead_ids: set[int] | frozenset = frozenset(),
    caller_leads: dict[int, Lead] | None = None,
) -> StageChanges:
    """Score these interactions and profile changes, then apply the qualifications scoring made.
    ``caller_leads``: the caller's Lead objects by id, kept truthful (scores, stage, owner)."""
    caller_leads = caller_leads or {}
    outcome = score_leads(
        interactions=list(interactions), profile_lead_ids=set(profile_lead_ids), caller_leads=caller_leads
    )
    changes = leads_apply_qualifications(qualifications=outcome.qualifications, instances=caller_leads)
    if outcome.expansions:  # customers who signalled they want more: expansion opportunities
        leads_open_expansions(expansions=outcome.expansions)
    return changes


def leads_promote_qualified(*, job_id: int | None = None, batch_size: int = 1000) -> int:
    """After a full recompute: move the visitors that now qualify for MQL, a batch per transaction
    (each promotion assigns a rep, so a rule change qualifying thousands does not hold the rescore).
    Returns how many moved; the recompute job (when given) counts them."""
    promoted = 0
    after = 0
    while True:
        with transaction.atomic():
            batch = recompute_qualifications(job_id=job_id, after_id=after, limit=batch_size)
            if batch is None:
                return promoted
            after = batch.last_id
            promoted += len(leads_apply_qualifications(qualifications=batch.qualifications).transitions)
            if job_id is not None:
                recompute_job_promoted(job_id=job_id, promoted=promoted)


# --- deferred scoring ------------------------------------------------------------------------

DRAIN_TASK = "leads.tasks.scores_drain"
_DRAIN_KICK = "scores-drain"


def scoring_deferred() -> bool:
    """Whether the intake and bulk paths leave scoring to a worker (``SCORING_DEFERRED``)."""
    return settings.SCORING_DEFERRED


def scores_drain_soon() -> None:
    """After commit, have a worker score what this transaction queued (one kick per moment)."""
    transaction.on_commit(lambda: kick_once(DRAIN_TASK, key=_DRAIN_KICK))


def leads_score_pending(*, limit: int | None = None) -> int:
    """Score one batch of queued events (oldest first) and apply the qualifications, in one
    transaction with the claim: a crash leaves the batch queued, nothing is scored twice.
    Returns how many queued rows it took (0: the queue was empty)."""
    with transaction.atomic():
        batch = pending_claim(limit=limit or settings.SCORING_DRAIN_BATCH)
        if batch is None:
            return 0
        leads_score(interactions=batch.interactions, profile_lead_ids=batch.profile_lead_ids)
        return batch.size


def leads_score_pending_all() -> int:
    """Drain the queue (the worker's task). Before its last look it lets the next request kick
    again, so an event committed meanwhile is either seen here or kicks a new drain."""
    done = 0
    while True:
        taken = leads_score_pending()
        done += taken
        if taken:
            continue
        kick_release(_DRAIN_KICK)
        taken = leads_score_pending()
        if not taken:
            return done
        done += taken

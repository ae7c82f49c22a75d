"""Scores and stages follow a lead's events: scoring decides, the funnel applies.

:func:`leads_score` scores new interactions and profile changes (any number of leads, the
single event being a batch of one) and moves the leads scoring qualified into MQL/PQL;
:func:`leads_promote_qualified` does the same after a full recompute, a batch at a time.
"""

from django.db import transaction

from scoring.services import recompute_job_promoted, recompute_qualifications, score_leads

from ..models import Interaction, Lead
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
    return leads_apply_qualifications(qualifications=outcome.qualifications, instances=caller_leads)


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

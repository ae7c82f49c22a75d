"""Scoring as the leads app runs it: score, then apply the qualifications (for tests that look at
stages as well as scores). Same keyword arguments as ``scoring.services``' entry points."""

from leads.services import leads_score


def score_interactions(*, lead, interactions, profile_changed: bool = False):
    return leads_score(
        interactions=interactions,
        profile_lead_ids={lead.pk} if profile_changed else set(),
        caller_leads={lead.pk: lead},
    )


def score_interactions_bulk(*, interactions):
    return leads_score(interactions=interactions)


def score_profile_change(*, lead):
    return leads_score(profile_lead_ids={lead.pk}, caller_leads={lead.pk: lead})

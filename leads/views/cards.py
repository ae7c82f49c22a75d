"""What a sales card shows (key actions, why the lead qualified, its top scoring rules, the top
predictive factors), built for a whole list at once; the queue page and the card re-rendered
after a failed action share it."""

from scoring.predictive.prediction import leads_top_factors

from .. import dashboard
from .common import _contribution_row

QUEUE_FACTORS_SHOWN = 3


def _queue_context(leads: list) -> dict:
    ids = [lead.pk for lead in leads]
    actions = dashboard.key_actions(lead_ids=ids)
    why = dashboard.qualifying_transitions(lead_ids=ids)
    breakdowns = _breakdowns_for(leads)
    factors = leads_top_factors(lead_ids=ids, top=QUEUE_FACTORS_SHOWN)
    cards = [
        {
            "lead": lead,
            "actions": actions.get(lead.pk, []),
            "transition": why.get(lead.pk),
            "rules": breakdowns.get(lead.pk, []),
            "factors": factors.get(lead.pk, []),
        }
        for lead in leads
    ]
    return {"cards": cards}


def _breakdowns_for(leads: list) -> dict[int, list[dict]]:
    """The rules that gave each lead most points, for all cards in one query."""
    found = dashboard.rule_totals_for(leads=leads)
    return {lead_id: [_contribution_row(c) for c in items][:5] for lead_id, items in found.items()}

"""The lead detail page: history by cycle, the merged timeline, the score breakdown, and the
stage actions the current user may take on this lead (the buttons post to ``lead_action``)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from leadfunnel.roles import is_marketer, is_sales, role_required
from scoring.selectors import lead_score_get

from .. import dashboard, selectors
from ..models import LossReason, RejectionReason, Stage
from .actions import QualifyForm
from .common import _contribution_row


@require_GET
@role_required(marketer=True, sales=True)
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = dashboard.lead_for_detail(lead_id=lead_id)
    if lead is None:
        raise Http404("No such lead.")
    return render(request, "leads/detail.html", _lead_detail_context(request, lead))


def _lead_detail_context(request: HttpRequest, lead) -> dict:
    transitions = list(lead.transitions.all())
    interactions = dashboard.lead_interactions(lead_id=lead.pk)
    lists = selectors.lead_static_lists(lead_id=lead.pk)  # with whether the lead is on each
    cycles: dict[int, list] = {}
    for transition in transitions:
        cycles.setdefault(transition.cycle, []).append(transition)
    return {
        "nav": "leads",
        "lead": lead,
        "cycles": sorted(cycles.items()),
        "timeline": dashboard.timeline_merge(interactions=interactions, transitions=transitions),
        "score": _score_breakdown(lead),
        "opportunities": list(lead.opportunities.all()),
        "actions": _allowed_actions(request.user, lead),
        "rejection_reasons": RejectionReason.choices,
        "loss_reasons": LossReason.choices,
        "qualify_form": QualifyForm(),
        "lead_lists": [s for s in lists if s.has_lead],
        "all_lists": [(s.pk, s.name) for s in lists if not s.has_lead],
        "can_edit_lists": is_marketer(request.user),
    }


def _score_breakdown(lead) -> dict:
    """The scoring app's explanation: points per rule (with caps and decay) and the ledger."""
    data = lead_score_get(lead=lead)
    rules = sorted(data.get("rules", []), key=lambda r: -abs(r.get("current_points") or 0))
    return {
        "available": True,
        "data": data,
        "rules": rules,
        "rows": [_contribution_row(c) for c in data.get("contributions", [])],
    }


def _allowed_actions(user, lead) -> set[str]:
    actions: set[str] = set()
    owns = lead.owner_id == user.pk or user.is_superuser
    if is_sales(user) and owns:
        if lead.stage in (Stage.MQL, Stage.PQL):
            actions |= {"accept", "reject"}
        if lead.stage == Stage.SAL:
            actions |= {"qualify"}
        if lead.stage == Stage.SQL:
            actions |= {"close"}
        if lead.stage in (Stage.MQL, Stage.PQL, Stage.SAL, Stage.SQL):
            actions |= {"disqualify"}
    if is_marketer(user) and lead.stage in (Stage.VISITOR, Stage.RECYCLED, Stage.LOST):
        actions |= {"mark_mql", "disqualify"}
    return actions

"""The lead detail page: history by cycle, the merged timeline, the score breakdown and its
chart over time, the predictive factors, the stage actions the current user may take on this
lead (the buttons post to ``lead_action``), and the profile and note / call / meeting forms.

A valid post of either form redirects back to the page with a message; a refused one renders
the page again with status 400 and the messages next to the fields (the service's own).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from leadfunnel.errors import DomainError, Forbidden, NotFound
from leadfunnel.roles import is_marketer, is_sales, role_required
from scoring.predictive.prediction import leads_top_factors
from scoring.selectors import lead_score_get, lead_score_series

from .. import dashboard, selectors, services
from ..models import SALES_ACTIVITY_TYPES, LossReason, RejectionReason, Stage
from .actions import QualifyForm
from .common import _contribution_row
from .lead_page import ACTIVITY_KINDS, ActivityForm, ProfileForm, place_errors, score_chart

PREDICTIVE_FACTORS_SHOWN = 5


@require_GET
@role_required(marketer=True, sales=True)
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    return render_lead_page(request, lead_id)


def render_lead_page(request: HttpRequest, lead_id: int, *, status: int = 200, **bound_forms) -> HttpResponse:
    lead = dashboard.lead_for_detail(lead_id=lead_id)
    if lead is None:
        raise Http404("No such lead.")
    context = _lead_detail_context(request, lead)
    context.update(bound_forms)
    return render(request, "leads/detail.html", context, status=status)


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
        "score_chart": score_chart(lead_score_series(lead_id=lead.pk)),
        "predictive_factors": leads_top_factors(lead_ids=[lead.pk], top=PREDICTIVE_FACTORS_SHOWN)[lead.pk],
        "opportunities": list(lead.opportunities.all()),
        "actions": _allowed_actions(request.user, lead),
        "rejection_reasons": RejectionReason.choices,
        "loss_reasons": LossReason.choices,
        "qualify_form": QualifyForm(),
        "can_edit": services.lead_can_edit(lead=lead, actor=request.user),
        "profile_form": ProfileForm.for_lead(lead),
        "activity_form": ActivityForm(prefix="activity"),
        "sales_activity_types": SALES_ACTIVITY_TYPES,
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
    if lead.stage == Stage.LOST and (
        user.is_superuser
        or (is_sales(user) and user.pk in services.deal_reps(lead.transitions.all(), cycle=lead.cycle))
    ):
        actions |= {"recycle"}
    return actions


# --- the page's forms -----------------------------------------------------------------------


@require_POST
@role_required(marketer=True, sales=True)
def lead_profile_edit(request: HttpRequest, lead_id: int) -> HttpResponse:
    form = ProfileForm(request.POST, prefix="profile")
    if form.is_valid():
        try:
            services.lead_edit_profile(lead=lead_id, actor=request.user, changes=dict(form.cleaned_data))
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from None
        except NotFound:
            raise Http404("No such lead.") from None
        except DomainError as exc:
            place_errors(form, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("dashboard:lead", lead_id=lead_id)
    return render_lead_page(request, lead_id, status=400, profile_form=form, profile_open=True)


@require_POST
@role_required(marketer=True, sales=True)
def lead_activity_log(request: HttpRequest, lead_id: int) -> HttpResponse:
    form = ActivityForm(request.POST, prefix="activity")
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.lead_log_activity(
                lead=lead_id,
                actor=request.user,
                kind=data["kind"],
                text=data["text"],
                outcome=data["outcome"],
                duration_minutes=data["duration_minutes"],
                occurred_at=data["occurred_at"],
            )
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from None
        except NotFound:
            raise Http404("No such lead.") from None
        except DomainError as exc:
            place_errors(form, exc)
        else:
            messages.success(request, f"{dict(ACTIVITY_KINDS)[data['kind']]} logged.")
            return redirect("dashboard:lead", lead_id=lead_id)
    return render_lead_page(request, lead_id, status=400, activity_form=form)

"""The sales rep's pages: the queue of MQL/PQL leads waiting for an answer and the pipeline of
SALs and SQLs they own, whose cards post to the stage actions."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required

from .. import dashboard, services
from ..models import LossReason, RejectionReason, SalesRepProfile
from .actions import QualifyForm
from .cards import _queue_context


@require_GET
@role_required(sales=True)
def queue(request: HttpRequest) -> HttpResponse:
    leads, totals = dashboard.queue_leads(user=request.user)
    context = {
        "nav": "queue",
        "expansions": dashboard.queue_expansions(user=request.user),
        **_queue_context(leads),
        "totals": totals,
        "rejection_reasons": RejectionReason.choices,
        "away": SalesRepProfile.objects.filter(user=request.user, is_away=True).exists(),
    }
    return render(request, "sales/queue.html", context)


@require_GET
@role_required(sales=True)
def pipeline(request: HttpRequest) -> HttpResponse:
    groups = dashboard.pipeline_leads(user=request.user)
    return render(
        request,
        "sales/pipeline.html",
        {
            "nav": "pipeline",
            "sals": groups["sal"],
            "sqls": groups["sql"],
            "totals": groups["totals"],
            "qualify_form": QualifyForm(),
            "loss_reasons": LossReason.choices,
            "rejection_reasons": RejectionReason.choices,
        },
    )


class ExpansionCloseForm(forms.Form):
    won = forms.TypedChoiceField(choices=(("1", "Won"), ("0", "Not now")), coerce=lambda v: v == "1")
    reason = forms.CharField(required=False, max_length=2000)


@require_POST
@role_required(sales=True)
def expansion_close(request: HttpRequest, opportunity_id: int) -> HttpResponse:
    """The queue's expansion card: won, or not now (with a reason)."""
    form = ExpansionCloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick won or not now.")
        return redirect("dashboard:queue")
    try:
        services.expansion_close(
            opportunity=opportunity_id,
            actor=request.user,
            won=form.cleaned_data["won"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Expansion closed.")
    return redirect("dashboard:queue")

"""The sales rep's pages: the queue of MQL/PQL leads waiting for an answer and the pipeline of
SALs and SQLs they own, whose cards post to the stage actions."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from leadfunnel.roles import role_required

from .. import dashboard
from ..models import LossReason, RejectionReason, SalesRepProfile
from .actions import QualifyForm
from .cards import _queue_context


@require_GET
@role_required(sales=True)
def queue(request: HttpRequest) -> HttpResponse:
    leads, totals = dashboard.queue_leads(user=request.user)
    context = {
        "nav": "queue",
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

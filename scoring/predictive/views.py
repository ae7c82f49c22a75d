"""Dashboard page "Scoring insights": the predictive model, back-tests (compare, then apply) and
channel quality. Thin views over the same services as the API; marketers and admins only."""

import json

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required

from . import backtest, channel_quality, prediction, runs
from .api import parse_period
from .models import BacktestJob, PredictiveModel
from .tasks import recompute_backtest, train_predictive_model

JOBS_SHOWN = 5


@require_GET
@role_required(marketer=True)
def insights(request: HttpRequest) -> HttpResponse:
    group_by = request.GET.get("group_by") or "channel"
    if group_by not in channel_quality.GROUP_BY:
        group_by = "channel"
    try:
        since, until = parse_period(request.GET.get("since"), request.GET.get("until"))
    except DomainError as exc:
        messages.error(request, exc.message)
        since, until = parse_period(None, None)
    jobs = list(BacktestJob.objects.select_related("created_by").order_by("-created_at")[:JOBS_SHOWN])
    return render(
        request,
        "scoring/insights.html",
        {
            "nav": "scoring",
            "active": prediction.predictive_model_active(),
            "latest": prediction.predictive_model_latest(),
            "quality": channel_quality.channel_quality(since=since, until=until, group_by=group_by),
            "group_choices": sorted(channel_quality.GROUP_BY),
            "since": since.date().isoformat(),
            "until": until.date().isoformat(),
            "jobs": jobs,
            "threshold": request.GET.get("threshold", ""),
        },
    )


@require_POST
@role_required(marketer=True)
def train(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        row, _created = runs.predictive_model_request(user=request.user)
        if row.status == PredictiveModel.Status.QUEUED:
            transaction.on_commit(lambda: train_predictive_model.delay(row.pk))
    messages.success(request, f"Training of model v{row.version} started; this page shows the result when done.")
    return redirect("predictive_ui:insights")


@require_POST
@role_required(marketer=True)
def backtest_start(request: HttpRequest) -> HttpResponse:
    data = request.POST
    try:
        overrides = {}
        if data.get("mql_threshold", "").strip():
            try:
                overrides["mql_threshold"] = int(data["mql_threshold"])
            except ValueError:
                raise DomainError("The MQL threshold must be a whole number.") from None
        diff = None
        if data.get("rules_diff", "").strip():
            try:
                diff = json.loads(data["rules_diff"])
            except ValueError as exc:
                raise DomainError(f"The rule changes are not valid JSON: {exc}.") from None
        since, until = parse_period(data.get("since"), data.get("until"))
        job = backtest.backtest_create(user=request.user, rules_diff=diff, settings=overrides, since=since, until=until)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("predictive_ui:insights")
    limit = getattr(settings, "BACKTEST_SYNC_INTERACTIONS", 20000)
    if backtest.backtest_interactions_in_scope(until=until) <= limit:
        backtest.backtest_run(job_id=job.pk)
    else:
        transaction.on_commit(lambda: recompute_backtest.delay(job.pk))
        messages.info(request, "The back-test runs in the background; reload to see its progress.")
    return redirect(reverse("predictive_ui:insights") + f"#backtest-{job.pk}")


@require_POST
@role_required(marketer=True)
def backtest_apply(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        backtest.backtest_apply(job_id=job_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The candidate is now the live scoring model; a full recompute is on its way.")
    return redirect("predictive_ui:insights")

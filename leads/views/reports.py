"""Report pages linked from the funnel page (marketers and admins): the cohort view and the reps'
SLA report, the very figures ``/api/v1/funnel/`` answers (``leads.analytics``), with its filters:
the period (``period=30d`` or ``since``/``until``, both days included) and, for the cohort,
``group_by``. Cached for a minute, as the funnel page is."""

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from leadfunnel.errors import ValidationFailed
from leadfunnel.roles import role_required

from .. import analytics, dashboard
from .overview import FUNNEL_CACHE_SECONDS

COHORT_STEP_LABELS = {"sal": "Accepted (SAL)", "sql": "Qualified (SQL)", "customer": "Won", "rejected": "Rejected"}


def _filters(request: HttpRequest) -> tuple:
    period = dashboard.period_from_params(request.GET)
    error = ""
    try:
        group_by = analytics.parse_group_by(request.GET.get("group_by"))
    except ValidationFailed as exc:
        group_by, error = None, exc.message
    return period, group_by, error


@require_GET
@role_required(marketer=True)
def cohort_report(request: HttpRequest) -> HttpResponse:
    period, group_by, error = _filters(request)
    key = f"dashboard:cohort:{period.since.isoformat()}:{period.until.isoformat()}:{group_by}"
    report = cache.get_or_set(
        key,
        lambda: analytics.funnel_cohort(since=period.since, until=period.until, group_by=group_by),
        FUNNEL_CACHE_SECONDS,
    )
    rows = [report["totals"], *report["groups"]] if group_by else [report["totals"]]
    context = {
        "nav": "funnel",
        "period": period,
        "periods": list(dashboard.PERIODS),
        "group_by": group_by or "",
        "groupings": analytics.GROUP_BY_CHOICES,
        "steps": [(step, COHORT_STEP_LABELS[step]) for step in analytics.COHORT_STEPS],
        "rows": rows,
        "error": error,
        "api_query": _api_query(period, group_by, view="cohort"),
    }
    return render(request, "dashboard/cohort.html", context, status=400 if error else 200)


@require_GET
@role_required(marketer=True)
def reps_report(request: HttpRequest) -> HttpResponse:
    period, _, _ = _filters(request)
    key = f"dashboard:reps-sla:{period.since.isoformat()}:{period.until.isoformat()}"
    report = cache.get_or_set(
        key, lambda: analytics.sla_report(since=period.since, until=period.until), FUNNEL_CACHE_SECONDS
    )
    context = {
        "nav": "funnel",
        "period": period,
        "periods": list(dashboard.PERIODS),
        "report": report,
        "api_query": _api_query(period, None, view="period"),
    }
    return render(request, "dashboard/reps.html", context)


def _api_query(period, group_by: str | None, *, view: str) -> str:
    query = f"view={view}&{period.as_query()}"
    return query + (f"&group_by={group_by}" if group_by else "")

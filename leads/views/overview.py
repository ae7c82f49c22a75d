"""The home page: marketers get the funnel overview (stage counts, conversions, time in stage,
the weekly trend, the funnel by group), reps are sent to their queue. The figures come from
``leads.analytics`` and are cached for a minute, since they aggregate the whole stage history."""

from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leadfunnel.roles import is_marketer, is_sales

from .. import analytics, dashboard
from ..models import RejectionReason, Stage
from ..selectors import segment_get, segment_lead_ids, segment_list


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not is_marketer(request.user):
        if is_sales(request.user):
            return redirect("dashboard:queue")
        raise PermissionDenied("Your account has no role yet; ask an admin to add you to marketing or sales.")
    return funnel_overview(request)


FUNNEL_CACHE_SECONDS = 60


def funnel_overview(request: HttpRequest) -> HttpResponse:
    period = dashboard.period_from_params(request.GET)
    group_by = request.GET.get("group_by") if request.GET.get("group_by") in dashboard.GROUPINGS else "source"
    segment = segment_get(segment_id=request.GET["segment"]) if request.GET.get("segment") else None
    # The whole page (figures, trend, past-SLA list, drill-down links) for this segment's leads.
    scope = segment_lead_ids(segment_id=segment.pk) if segment else None
    # Aggregates over the whole stage history: computed at most once a minute per period and grouping.
    key = (
        f"dashboard:funnel:v2:{period.since.isoformat()}:{period.until.isoformat()}:{group_by}:{segment and segment.pk}"
    )
    summary, durations, expansions, computed_at = cache.get_or_set(
        key,
        lambda: (
            analytics.funnel_summary(
                since=period.since, until=period.until, group_by=dashboard.GROUPINGS[group_by], scope=scope
            ),
            analytics.stage_durations(since=period.since, until=period.until, scope=scope),
            analytics.expansion_counts(since=period.since, until=period.until),
            timezone.now(),
        ),
        FUNNEL_CACHE_SECONDS,
    )
    stays = durations["groups"][0]["stages"] if durations["groups"] else {}
    medians = {
        stage: (round(stay["median_hours"] / 24, 1) if stay.get("median_hours") is not None else None)
        for stage, stay in stays.items()
    }
    totals = summary["totals"]
    sla_count, sla_leads = dashboard.mqls_past_sla(scope=scope)
    link_extra = {"segment": segment.pk} if segment else {}
    context = {
        "nav": "funnel",
        "period": period,
        "periods": list(dashboard.PERIODS),
        "group_by": group_by,
        "report_group_by": dashboard.GROUPINGS[group_by],  # the funnel API's name for it
        "groupings": list(dashboard.GROUPINGS),
        "steps": _funnel_steps(totals, medians, period, **link_extra),
        "segment": segment,
        "segments": list(segment_list().values_list("pk", "name")),
        "pql": {
            "count": totals["entries"]["pql"],
            "median_days": medians.get("pql"),
            "rate": _conversion(totals, "pql", "sal"),
            "link": _entered_link("pql", period, **link_extra),
        },
        "summary": {
            "rejections": totals["rejections"],
            "recycles": totals["recycles"],
            "mql_sal_ratio": totals["mql_sal_ratio"],
        },
        "groups": [_group_row(g, group_by, period, **link_extra) for g in summary["groups"]],
        "expansions": expansions,
        "sla_count": sla_count,
        "sla_leads": sla_leads,
        "trend": _trend_chart(
            cache.get_or_set(
                f"dashboard:weekly-trend:{segment and segment.pk}",
                lambda: dashboard.weekly_trend(scope=scope),
                FUNNEL_CACHE_SECONDS,
            )
        ),
        "rejection_labels": dict(RejectionReason.choices),
        "computed_at": computed_at,
    }
    return render(request, "dashboard/funnel.html", context)


def _entered_link(stage: str, period, **extra) -> str:
    params = {"entered": stage, "since": period.since_date.isoformat(), "until": period.until_date.isoformat()}
    params.update({k: v for k, v in extra.items() if v not in (None, "")})
    return "/leads/?" + urlencode(params)


def _conversion(group: dict, from_stage: str, to_stage: str) -> float | None:
    for conversion in group["conversions"]:
        if conversion["from"] == from_stage and conversion["to"] == to_stage:
            return conversion["rate"]
    return None


def _funnel_steps(totals: dict, medians: dict, period, **link_extra) -> list[dict]:
    entries = totals["entries"]
    top = max(entries["visitor"], 1)
    steps = []
    previous = None
    for stage in dashboard.FUNNEL_STAGES:
        count = entries[str(stage)]
        steps.append(
            {
                "stage": str(stage),
                "label": Stage(stage).label,
                "count": count,
                "width": max(round(100 * count / top, 1), 1.5),
                "rate": _conversion(totals, previous, str(stage)) if previous else None,
                "median_days": medians.get(str(stage)),
                "link": _entered_link(str(stage), period, **link_extra),
            }
        )
        previous = str(stage)
    return steps


def _group_row(group: dict, group_by: str, period, **link_extra) -> dict:
    key = group["key"]
    extra = {group_by: key} if key not in (None, "") else {}
    linkable = bool(extra)
    extra.update(link_extra)
    entries = group["entries"]
    return {
        "label": group["label"] if key not in (None, "") else "(none)",
        "entries": entries,
        "links": {s: _entered_link(s, period, **extra) for s in ("visitor", "mql", "pql", "sal", "sql", "customer")},
        "linkable": linkable,
        "mql_sal_rate": _conversion(group, "mql", "sal"),
        "sal_sql_rate": _conversion(group, "sal", "sql"),
        "sql_customer_rate": _conversion(group, "sql", "customer"),
        "rejected": group["rejections"]["total"],
    }


def _trend_chart(trend: dict, width: int = 1000, height: int = 200, pad: int = 28) -> dict:
    """Polylines for a small server-rendered SVG line chart (no chart library needed)."""
    weeks = trend["weeks"]
    top = max([max(values) for values in trend["series"].values()] + [1])
    step = (width - 2 * pad) / max(len(weeks) - 1, 1)
    series = []
    for stage, values in trend["series"].items():
        points = " ".join(
            f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}" for i, v in enumerate(values)
        )
        series.append({"stage": str(stage), "label": Stage(stage).label, "points": points, "total": sum(values)})
    labels = [
        {"x": round(pad + i * step, 1), "text": week.strftime("%d %b")}
        for i, week in enumerate(weeks)
        if i % 2 == 0 or i == len(weeks) - 1
    ]
    rows = [{"week": week, **{str(s): trend["series"][s][i] for s in trend["series"]}} for i, week in enumerate(weeks)]
    return {"width": width, "height": height, "pad": pad, "top": top, "series": series, "labels": labels, "rows": rows}

"""The cohort view: the leads that became MQL or PQL in the period, followed to today within the
same cycle — how many reached SAL, SQL, customer or were rejected, and how long it took."""

from datetime import datetime

from django.db.models import OuterRef, Q, Subquery

from ..models import StageTransition
from .common import AWAITING, _labels, _rate, _scoped, _sort_key, _transition_grp
from .durations import _durations
from .postgres import _is_postgres, _pg_cohort_raw


def _first_after(stage: str, extra: Q | None = None) -> Subquery:
    """When the lead first entered ``stage`` after the cohort entry, in the same cycle."""
    qs = StageTransition.objects.filter(
        lead_id=OuterRef("lead_id"), cycle=OuterRef("cycle"), to_stage=stage, at__gte=OuterRef("at")
    )
    if extra is not None:
        qs = qs.filter(extra)
    return Subquery(qs.order_by("at", "id").values("at")[:1])


COHORT_STEPS = ("sal", "sql", "customer", "rejected")


def funnel_cohort(*, since: datetime, until: datetime, group_by: str | None = None, scope=None) -> dict:
    """Cohort view: leads that entered MQL or PQL in ``[since, until)`` (one entry per lead
    and cycle), followed to today within the same cycle. One query (+1 for owner names).

    Returns ``{"since", "until", "group_by", "totals": C, "groups": [C, ...]}`` where C is::

        {"key", "label", "cohort": n,
         "reached": {"sal": n, "sql": n, "customer": n, "rejected": n},
         "rates": {step: reached/cohort},
         "median_days": {step: days from the MQL entry | null},
         "p90_days": {step: ... }}
    """
    inner = (
        _scoped(StageTransition.objects.filter(to_stage__in=AWAITING, at__gte=since, at__lt=until), scope, "lead_id")
        .annotate(
            grp=_transition_grp(group_by),
            sal_at=_first_after("sal"),
            sql_at=_first_after("sql"),
            customer_at=_first_after("customer"),
            rejected_at=_first_after("recycled", Q(from_stage__in=AWAITING)),
        )
        .values("grp", "at", "sal_at", "sql_at", "customer_at", "rejected_at")
        .order_by()
    )
    spans = {step: ("at", f"{step}_at") for step in COHORT_STEPS}
    group_cols = ["grp"] if group_by else []
    raw = _pg_cohort_raw(since, until, group_by, scope) if _is_postgres() else None
    data = _durations(inner, group_cols, spans, unit=86400, raw=raw)
    if not group_by:
        return {
            "since": since,
            "until": until,
            "group_by": None,
            "totals": _cohort_entry(None, "All leads", data.get(())),
        }
    labels = _labels(group_by, [k[0] for k in data])
    groups = [_cohort_entry(k[0], labels[k[0]], data[k]) for k in sorted(data, key=lambda k: _sort_key(k[0]))]
    totals = _cohort_totals(groups)
    return {"since": since, "until": until, "group_by": group_by, "totals": totals, "groups": groups}


def _cohort_entry(key, label: str, entry: dict | None) -> dict:
    entry = entry or {"rows": 0}
    cohort = entry["rows"]
    reached = {step: entry.get(step, {}).get("count", 0) for step in COHORT_STEPS}
    return {
        "key": key,
        "label": label,
        "cohort": cohort,
        "reached": reached,
        "rates": {step: _rate(reached[step], cohort) for step in COHORT_STEPS},
        "median_days": {step: entry.get(step, {}).get("median") for step in COHORT_STEPS},
        "p90_days": {step: entry.get(step, {}).get("p90") for step in COHORT_STEPS},
    }


def _cohort_totals(groups: list[dict]) -> dict:
    # Counts add up across groups; medians do not, so totals carry counts and rates only
    # (ask without group_by for the overall medians).
    cohort = sum(g["cohort"] for g in groups)
    reached = {step: sum(g["reached"][step] for g in groups) for step in COHORT_STEPS}
    return {
        "key": None,
        "label": "All leads",
        "cohort": cohort,
        "reached": reached,
        "rates": {step: _rate(reached[step], cohort) for step in COHORT_STEPS},
        "median_days": None,
        "p90_days": None,
    }

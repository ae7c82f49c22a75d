"""The period view: what happened in ``[since, until)`` — entries into each stage, conversions
between consecutive stages, sales' rejections and recycles — from the stage history, in two
grouped counts however long the history is."""

from collections import defaultdict
from datetime import datetime

from django.db.models import Count

from ..models import Lead, StageTransition
from .common import AWAITING, _form_slugs_for, _labels, _lead_grp, _rate, _scoped, _sort_key, _transition_grp

# Stages counted in the period view, in display order ("visitor" = leads created).
PERIOD_STAGES = ("visitor", "mql", "pql", "sal", "sql", "customer", "recycled", "lost", "disqualified")
# (from, to) pairs of the main funnel, for conversion rates.
CONVERSIONS = (("visitor", "mql"), ("mql", "sal"), ("pql", "sal"), ("sal", "sql"), ("sql", "customer"))


# Moves counted for the period's conversions: (from, to) → name.
_COUNTED_MOVES = {
    ("visitor", "mql"): "mql_from_visitor",
    ("mql", "sal"): "sal_from_mql",
    ("pql", "sal"): "sal_from_pql",
    ("sal", "sql"): "sql_from_sal",
    ("sql", "customer"): "customer_from_sql",
}


def funnel_summary(*, since: datetime, until: datetime, group_by: str | None = None, scope=None) -> dict:
    """Period view. Two queries (+1 for owner names, +1 for form slugs on PostgreSQL).

    Returns ``{"since", "until", "group_by", "totals": G, "groups": [G, ...]}`` where G is::

        {"key", "label",
         "entries": {"visitor": new leads, "mql", "pql", "sal", "sql", "customer", "recycled", "lost",
                     "disqualified": transitions into the stage in the period},
         "conversions": [{"from", "to", "from_count", "to_count", "rate"}],   # CONVERSIONS pairs
         "mql_sal_ratio": SAL entries from MQL / MQL entries (null if no MQL),
         "rejections": {"total": n, "reasons": {reason_code: n}},   # MQL/PQL → recycled
         "recycles": {"recycled": n, "returned": n}}                # returned = recycled/lost → MQL/PQL

    Period conversions compare entries of the same period: ``sal`` counts only SAL entries
    coming from MQL (resp. PQL), ``visitor → mql`` divides MQL entries from visitor by new leads.
    """
    transitions = _scoped(StageTransition.objects.filter(at__gte=since, at__lt=until), scope, "lead_id")
    # One grouped count per (group, from, to, reason); the period's figures are sums of those rows
    # (cheaper than a dozen COUNT … FILTER over every transition).
    moves = (
        transitions.annotate(grp=_transition_grp(group_by))
        .values("grp", "from_stage", "to_stage", "reason_code")
        .annotate(n=Count("id"))
        .order_by()
    )
    new_rows = (
        _scoped(Lead.objects.filter(created_at__gte=since, created_at__lt=until), scope, "pk")
        .annotate(grp=_lead_grp(group_by))
        .values("grp")
        .annotate(n=Count("id"))
        .order_by()
    )

    raw: dict = defaultdict(lambda: defaultdict(int))
    reasons: dict = defaultdict(lambda: defaultdict(int))
    for row in moves:
        frm, to, n = row["from_stage"], row["to_stage"], row["n"]
        bucket = raw[row["grp"]]
        if to in PERIOD_STAGES and to != "visitor":
            bucket[f"to_{to}"] += n
        if (frm, to) in _COUNTED_MOVES:
            bucket[_COUNTED_MOVES[(frm, to)]] += n
        if to == "recycled" and frm in AWAITING:
            bucket["rejected"] += n
            reasons[row["grp"]][row["reason_code"] or "unspecified"] += n
        if to in AWAITING and frm in ("recycled", "lost"):
            bucket["returned"] += n
    for row in new_rows:
        raw[row["grp"]]["to_visitor"] += row["n"]
    slugs = _form_slugs_for(group_by, list(raw) + list(reasons))
    if slugs:  # transitions grouped by form id, new leads by slug: merge under the slug
        for table in (raw, reasons):
            for form_id in [k for k in table if isinstance(k, int) and k in slugs]:
                for name, value in table.pop(form_id).items():
                    table[slugs[form_id]][name] += value
    # Drop all-zero groups (an aggregate without GROUP BY answers one row of zeros).
    keys = [k for k, v in raw.items() if any(v.values())]
    labels = _labels(group_by, keys)

    def shape(key, counts: dict, reason_counts: dict) -> dict:
        entries = {stage: counts.get(f"to_{stage}", 0) for stage in PERIOD_STAGES}
        to_counts = {
            ("visitor", "mql"): counts.get("mql_from_visitor", 0),
            ("mql", "sal"): counts.get("sal_from_mql", 0),
            ("pql", "sal"): counts.get("sal_from_pql", 0),
            ("sal", "sql"): counts.get("sql_from_sal", 0),
            ("sql", "customer"): counts.get("customer_from_sql", 0),
        }
        conversions = [
            {
                "from": a,
                "to": b,
                "from_count": entries[a],
                "to_count": to_counts[(a, b)],
                "rate": _rate(to_counts[(a, b)], entries[a]),
            }
            for a, b in CONVERSIONS
        ]
        return {
            "key": key,
            "label": labels.get(key, "All leads") if key is not None or group_by else "All leads",
            "entries": entries,
            "conversions": conversions,
            "mql_sal_ratio": _rate(to_counts[("mql", "sal")], entries["mql"]),
            "rejections": {"total": counts.get("rejected", 0), "reasons": dict(sorted(reason_counts.items()))},
            "recycles": {"recycled": entries["recycled"], "returned": counts.get("returned", 0)},
        }

    total_counts: dict = defaultdict(int)
    total_reasons: dict = defaultdict(int)
    for key in keys:
        for name, value in raw[key].items():
            total_counts[name] += value
        for code, value in reasons[key].items():
            total_reasons[code] += value
    totals = shape(None, total_counts, total_reasons)
    totals["label"] = "All leads"
    groups = [shape(k, raw[k], reasons[k]) for k in sorted(keys, key=_sort_key)] if group_by else []
    return {"since": since, "until": until, "group_by": group_by, "totals": totals, "groups": groups}

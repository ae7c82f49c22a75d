"""Funnel analytics, computed from the recorded stage history (``StageTransition``), never
from leads' current stage alone. Read-only selectors used by the funnel API and the dashboard.

Every function takes a half-open period ``[since, until)`` (aware datetimes) and an optional
``group_by`` among :data:`GROUP_BY_CHOICES`; it runs a constant number of aggregate queries
(no per-lead or per-group queries) and returns plain dicts/lists ready for JSON:

- :func:`funnel_summary` — period view: entries into each stage, conversions between
  consecutive stages, MQL:SAL ratio, rejection reasons, recycle counts.
- :func:`funnel_cohort` — cohort view: of the leads that became MQL/PQL in the period, how
  many reached SAL / SQL / customer (any time since, same cycle) and the median/p90 days.
- :func:`stage_durations` — median and p90 hours spent in each stage entered in the period.
- :func:`channel_quality` — of the SQLs of the period, how many were won, lost, still open.
- :func:`sla_report` — reps' response time (``first_response_at − assigned_at``) against the SLA.
- :func:`funnel_report` — all of the above as the funnel API answers it (uncached; the API caches).

Groups are ``{"key": <raw value or null>, "label": <text>, ...}``; ``key`` is ``null`` for
the ungrouped total and for leads without a value. Percentiles use PostgreSQL's
``percentile_cont`` (linear interpolation); on SQLite the same numbers are computed in
Python over the fetched durations (fine for the embedded demo, not for 100k leads).
"""

import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields import CharField
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from leadfunnel.errors import ValidationFailed
from leadfunnel.models import LeadAssignment

from .models import Form, Lead, StageTransition
from .selectors import current_sla_hours

GROUP_BY_CHOICES = ("source", "channel", "form", "owner", "utm_campaign", "cycle")
DEFAULT_PERIOD = timedelta(days=30)
# Stages counted in the period view, in display order ("visitor" = leads created).
PERIOD_STAGES = ("visitor", "mql", "pql", "sal", "sql", "customer", "recycled", "lost", "disqualified")
# (from, to) pairs of the main funnel, for conversion rates.
CONVERSIONS = (("visitor", "mql"), ("mql", "sal"), ("pql", "sal"), ("sal", "sql"), ("sql", "customer"))
AWAITING = ("mql", "pql")
# Memory for the sorts of one funnel report (PostgreSQL, per report transaction).
ANALYTICS_WORK_MEM = "32MB"

# group_by → field path from a StageTransition / from a Lead.
_TRANSITION_GROUP = {
    "source": "lead__source",
    "channel": "lead__channel",
    "form": "lead__first_form__slug",
    "owner": "owner_id",
    "utm_campaign": "lead__utm_campaign",
    "cycle": "cycle",
}
_LEAD_GROUP = {
    "source": "source",
    "channel": "channel",
    "form": "first_form__slug",
    "owner": "owner_id",
    "utm_campaign": "utm_campaign",
    "cycle": None,  # a new lead is in its first cycle
}


# --- period and parameters ---------------------------------------------------------


def _parse_bound(raw: str | None, name: str, *, end: bool) -> datetime | None:
    if raw in (None, ""):
        return None
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        if day is None:
            raise ValidationFailed(
                f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time, got {raw!r}.",
                fields={name: ["Not a date."]},
            )
        # A date means the whole day: since = its start, until = the end of that day.
        value = datetime.combine(day + timedelta(days=1) if end else day, time.min)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def parse_period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """Turn query parameters into ``[since, until)``; default: the last 30 days. 400 on nonsense."""
    try:
        since_at = _parse_bound(since, "since", end=False)
        until_at = _parse_bound(until, "until", end=True)
    except ValueError as exc:  # e.g. 2026-02-30
        raise ValidationFailed(f"Invalid date: {exc}.") from None
    until_at = until_at or timezone.now()
    since_at = since_at or until_at - DEFAULT_PERIOD
    if since_at >= until_at:
        raise ValidationFailed("since must be before until.", fields={"since": ["Must be before until."]})
    return since_at, until_at


def parse_group_by(raw: str | None) -> str | None:
    if raw in (None, ""):
        return None
    if raw not in GROUP_BY_CHOICES:
        raise ValidationFailed(
            f"group_by must be one of {', '.join(GROUP_BY_CHOICES)}, got {raw!r}.",
            fields={"group_by": ["Unknown grouping."]},
        )
    return raw


def _grp(path: str | None):
    return F(path) if path else Value(None, output_field=CharField())


def _transition_grp(group_by: str | None):
    if group_by in _PG_COPY and _is_postgres():
        # The lead's attribution copied onto the transition (migration 0003): no join.
        return RawSQL(f'"leads_stagetransition"."{_PG_COPY[group_by]}"', (), output_field=CharField())  # noqa: S611 - our column names
    return _grp(_TRANSITION_GROUP[group_by] if group_by else None)


def _form_slugs_for(group_by: str | None, keys) -> dict:
    """On PostgreSQL a ``form`` group key from the transitions is the form's id: its slug, by id."""
    if group_by != "form" or not _is_postgres():
        return {}
    ids = [k for k in keys if isinstance(k, int)]  # new leads are already grouped by slug
    return dict(Form.objects.filter(pk__in=ids).values_list("pk", "slug")) if ids else {}


def _lead_grp(group_by: str | None):
    if group_by is None:
        return _grp(None)
    path = _LEAD_GROUP[group_by]
    return _grp(path) if path else Value(1)


def _labels(group_by: str | None, keys) -> dict:
    """Readable labels for group keys (one query for owners, none otherwise)."""
    if group_by == "owner":
        ids = [k for k in keys if isinstance(k, int)]  # new leads are already grouped by slug
        users = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
        return {k: users.get(k, f"user {k}") if k is not None else "(no owner)" for k in keys}
    if group_by is None:
        return dict.fromkeys(keys, "All leads")
    return {k: str(k) if k not in (None, "") else "(none)" for k in keys}


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _sort_key(key):
    return (key is None or key == "", str(key))


# --- percentiles: PostgreSQL percentile_cont, or the same in Python --------------------


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _durations(
    inner, group_cols: list[str], spans: dict[str, tuple[str, str]], unit: float, *, raw: tuple | None = None
) -> dict:
    """Count, median and p90 of ``end - start`` per group, for each named span.

    ``inner`` is a ``.values()`` queryset selecting the group columns and the start/end
    datetime columns; on PostgreSQL ``raw`` (``(sql, params)`` selecting the same columns)
    replaces it when given. Returns ``{group tuple: {"rows": n, span: {"count", "median",
    "p90"}}}`` with durations in ``unit`` seconds. One query.
    """
    result: dict = {}
    if connection.vendor == "postgresql":
        sql, params = raw if raw is not None else inner.query.sql_with_params()
        # Hash-aggregate each group's durations into an array, then take both percentiles from one
        # sort of that array: no sort of every row by the group keys (which ordered-set
        # aggregates would need), and date_part gives float8 (EXTRACT gives slower numeric).
        arrays, measures = [], []
        for i, (start, end) in enumerate(spans.values()):
            delta = f'date_part(\'epoch\', t."{end}" - t."{start}") / {float(unit)}'
            arrays.append(f'array_agg({delta}) FILTER (WHERE t."{end}" IS NOT NULL) AS h{i}')
            measures += [
                f"COALESCE(cardinality(g.h{i}), 0)",
                f"(SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY x) FROM unnest(g.h{i}) AS x)",  # noqa: S608
            ]
        cols = ", ".join(f't."{c}"' for c in group_cols)
        outer_cols = ", ".join(f'g."{c}"' for c in group_cols)
        inner_select = ", ".join(filter(None, [cols, "COUNT(*) AS n", *arrays]))
        query = f"SELECT {inner_select} FROM ({sql}) t"  # noqa: S608 - column names are ours, values are params
        if cols:
            query += f" GROUP BY {cols}"
        query = f"SELECT {', '.join(filter(None, [outer_cols, 'g.n', *measures]))} FROM ({query}) g"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
        n = len(group_cols)
        for row in rows:
            key = tuple(row[:n])
            if not cols and row[0] == 0:
                continue
            entry = {"rows": row[n]}
            for i, name in enumerate(spans):
                count, percentiles = row[n + 1 + 2 * i : n + 3 + 2 * i]
                median, p90 = percentiles or (None, None)
                entry[name] = {
                    "count": count,
                    "median": None if median is None else round(float(median), 4),
                    "p90": None if p90 is None else round(float(p90), 4),
                }
            result[key] = entry
        return result
    collected: dict = defaultdict(lambda: {"rows": 0, **{name: [] for name in spans}})
    for row in inner:
        key = tuple(row[c] for c in group_cols)
        bucket = collected[key]
        bucket["rows"] += 1
        for name, (start, end) in spans.items():
            if row[end] is not None and row[start] is not None:
                bucket[name].append((row[end] - row[start]).total_seconds() / unit)
    for key, bucket in collected.items():
        entry = {"rows": bucket["rows"]}
        for name in spans:
            values = bucket[name]
            median, p90 = percentile_cont(values, 0.5), percentile_cont(values, 0.9)
            entry[name] = {
                "count": len(values),
                "median": None if median is None else round(median, 4),
                "p90": None if p90 is None else round(p90, 4),
            }
        result[key] = entry
    return result


# --- PostgreSQL fast paths ---------------------------------------------------------------
# One pass over the transitions since the period start (window function or GROUP BY per
# lead and cycle) instead of a correlated subquery per transition. Everything that follows
# an entry in the period happened after ``since``, so nothing older needs reading.

# The lead's attribution as copied onto each transition (migration 0003, PostgreSQL only).
_PG_COPY = {
    "source": "lead_source",
    "channel": "lead_channel",
    "form": "lead_first_form_id",
    "utm_campaign": "lead_utm_campaign",
}
_PG_FORM_JOIN = "LEFT JOIN leads_form f ON f.id = {alias}.lead_first_form_id"


def _pg_group_expr(group_by: str | None, *, alias: str, owner: str, cycle: str) -> tuple[str, str]:
    """(SQL expression for the group, joins it needs) — names are ours, never user input."""
    # Text keys group under the "C" collation: byte comparisons sort far faster than the
    # database's linguistic collation, and equality (all grouping needs) is the same.
    if group_by is None:
        return 'NULL::text COLLATE "C"', ""
    if group_by == "owner":
        return owner, ""
    if group_by == "cycle":
        return cycle, ""
    if group_by == "form":
        return 'f.slug COLLATE "C"', _PG_FORM_JOIN.format(alias=alias)
    return f'{alias}.{_PG_COPY[group_by]} COLLATE "C"', ""


def _pg_cycles_sql(since: datetime, until: datetime, entered: str, read: str) -> tuple[str, list]:
    """Per lead and cycle, the first entry into each stage since ``since``, for the leads that
    entered one of the stages ``entered`` (an SQL list of our own literals) in ``[since, until)``.
    Only transitions into the stages ``read`` are aggregated (each column below looks at its own
    stages, so the others cannot change the columns the caller uses). Within a cycle a lead enters
    MQL/PQL (and SQL) at most once — so MIN(owner) is that entry's owner — and SAL, SQL, customer,
    lost only after it."""
    sql = f"""
        SELECT st.lead_id, st.cycle,
            MIN(st.at) FILTER (WHERE st.to_stage IN ('mql', 'pql')) AS entry_at,
            MIN(st.owner_id) FILTER (WHERE st.to_stage IN ('mql', 'pql')) AS entry_owner,
            MIN(st.at) FILTER (WHERE st.to_stage = 'sal') AS sal_at,
            MIN(st.at) FILTER (WHERE st.to_stage = 'sql') AS sql_at,
            MIN(st.owner_id) FILTER (WHERE st.to_stage = 'sql') AS sql_owner,
            MIN(st.at) FILTER (WHERE st.to_stage = 'customer') AS customer_at,
            MIN(st.at) FILTER (WHERE st.to_stage = 'lost') AS lost_at,
            MIN(st.at) FILTER (WHERE st.to_stage = 'recycled' AND st.from_stage IN ('mql', 'pql')) AS rejected_at,
            MIN(st.lead_source) AS lead_source, MIN(st.lead_channel) AS lead_channel,
            MIN(st.lead_utm_campaign) AS lead_utm_campaign, MIN(st.lead_first_form_id) AS lead_first_form_id
        FROM leads_stagetransition st
        WHERE st.at >= %s AND st.to_stage IN ({read}) AND st.lead_id IN (
            SELECT e.lead_id FROM leads_stagetransition e
            WHERE e.to_stage IN ({entered}) AND e.at >= %s AND e.at < %s
        )
        GROUP BY st.lead_id, st.cycle
    """  # noqa: S608 - only our own literals are interpolated
    return sql, [since, since, until]


def _pg_cohort_raw(since: datetime, until: datetime, group_by: str | None) -> tuple[str, list]:
    cycles, params = _pg_cycles_sql(since, until, "'mql', 'pql'", "'mql', 'pql', 'sal', 'sql', 'customer', 'recycled'")
    grp, joins = _pg_group_expr(group_by, alias="c", owner="c.entry_owner", cycle="c.cycle")
    sql = f"""
        SELECT {grp} AS grp, c.entry_at AS at, c.sal_at, c.sql_at, c.customer_at, c.rejected_at
        FROM ({cycles}) c {joins}
        WHERE c.entry_at >= %s AND c.entry_at < %s
    """  # noqa: S608 - only our own column names are interpolated
    return sql, [*params, since, until]


def _pg_quality_raw(since: datetime, until: datetime, group_by: str) -> tuple[str, list]:
    cycles, params = _pg_cycles_sql(since, until, "'sql'", "'sql', 'customer', 'lost'")
    grp, joins = _pg_group_expr(group_by, alias="c", owner="c.sql_owner", cycle="c.cycle")
    sql = f"""
        SELECT {grp} AS grp, c.sql_at, c.customer_at, c.lost_at
        FROM ({cycles}) c {joins}
        WHERE c.sql_at >= %s AND c.sql_at < %s
    """  # noqa: S608 - only our own column names are interpolated
    return sql, [*params, since, until]


def _pg_durations_raw(since: datetime, until: datetime, group_by: str | None) -> tuple[str, list]:
    # left_at (the lead's next transition) is kept on each row by a trigger (migration 0003).
    grp, joins = _pg_group_expr(group_by, alias="st", owner="st.owner_id", cycle="st.cycle")
    sql = f"""
        SELECT {grp} AS grp, st.to_stage COLLATE "C" AS stage, st.at, st.left_at
        FROM leads_stagetransition st {joins}
        WHERE st.at >= %s AND st.at < %s
    """  # noqa: S608 - only our own column names are interpolated
    return sql, [since, until]


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- period view --------------------------------------------------------------------


# Moves counted for the period's conversions: (from, to) → name.
_COUNTED_MOVES = {
    ("visitor", "mql"): "mql_from_visitor",
    ("mql", "sal"): "sal_from_mql",
    ("pql", "sal"): "sal_from_pql",
    ("sal", "sql"): "sql_from_sal",
    ("sql", "customer"): "customer_from_sql",
}


def funnel_summary(*, since: datetime, until: datetime, group_by: str | None = None) -> dict:
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
    transitions = StageTransition.objects.filter(at__gte=since, at__lt=until)
    # One grouped count per (group, from, to, reason); the period's figures are sums of those rows
    # (cheaper than a dozen COUNT … FILTER over every transition).
    moves = (
        transitions.annotate(grp=_transition_grp(group_by))
        .values("grp", "from_stage", "to_stage", "reason_code")
        .annotate(n=Count("id"))
        .order_by()
    )
    new_rows = (
        Lead.objects.filter(created_at__gte=since, created_at__lt=until)
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


# --- cohort view --------------------------------------------------------------------


def _first_after(stage: str, extra: Q | None = None) -> Subquery:
    """When the lead first entered ``stage`` after the cohort entry, in the same cycle."""
    qs = StageTransition.objects.filter(
        lead_id=OuterRef("lead_id"), cycle=OuterRef("cycle"), to_stage=stage, at__gte=OuterRef("at")
    )
    if extra is not None:
        qs = qs.filter(extra)
    return Subquery(qs.order_by("at", "id").values("at")[:1])


COHORT_STEPS = ("sal", "sql", "customer", "rejected")


def funnel_cohort(*, since: datetime, until: datetime, group_by: str | None = None) -> dict:
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
        StageTransition.objects.filter(to_stage__in=AWAITING, at__gte=since, at__lt=until)
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
    raw = _pg_cohort_raw(since, until, group_by) if _is_postgres() else None
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


# --- time in stage -------------------------------------------------------------------


def stage_durations(*, since: datetime, until: datetime, group_by: str | None = None) -> dict:
    """Time spent in each stage entered in ``[since, until)``: from the entry to the lead's
    next transition. Stays still open are counted in ``open`` and left out of the percentiles.
    One query (+1 for owner names).

    Returns ``{"since", "until", "group_by", "unit": "hours", "groups": [
        {"key", "label", "stages": {stage: {"entered", "left", "open", "median_hours", "p90_hours"}}}]}``
    (one group with ``key`` null when ``group_by`` is not given).
    """
    after_this = Q(at__gt=OuterRef("at")) | Q(at=OuterRef("at"), pk__gt=OuterRef("pk"))
    next_at = Subquery(
        StageTransition.objects.filter(after_this, lead_id=OuterRef("lead_id")).order_by("at", "id").values("at")[:1]
    )
    inner = (
        StageTransition.objects.filter(at__gte=since, at__lt=until)
        .annotate(grp=_transition_grp(group_by), stage=F("to_stage"), left_at=next_at)
        .values("grp", "stage", "at", "left_at")
        .order_by()
    )
    raw = _pg_durations_raw(since, until, group_by) if _is_postgres() else None
    data = _durations(inner, ["grp", "stage"], {"stay": ("at", "left_at")}, unit=3600, raw=raw)
    by_group: dict = defaultdict(dict)
    for (grp, stage), entry in data.items():
        stay = entry["stay"]
        by_group[grp][stage] = {
            "entered": entry["rows"],
            "left": stay["count"],
            "open": entry["rows"] - stay["count"],
            "median_hours": stay["median"],
            "p90_hours": stay["p90"],
        }
    labels = _labels(group_by, list(by_group))
    groups = [
        {"key": k, "label": labels[k], "stages": dict(sorted(by_group[k].items()))}
        for k in sorted(by_group, key=_sort_key)
    ]
    return {"since": since, "until": until, "group_by": group_by, "unit": "hours", "groups": groups}


# --- channel quality -------------------------------------------------------------------


def channel_quality(*, since: datetime, until: datetime, group_by: str = "channel") -> list[dict]:
    """Of the leads that became SQL in ``[since, until)``, per channel (or source, form,
    utm_campaign): how many closed won, lost, or are still open (same cycle, any time since).
    Shows which channels bring SQLs that do not close. One query.

    Returns ``[{"key", "label", "sqls", "won", "lost", "open", "win_rate"}]`` with
    ``win_rate = won / (won + lost)`` (null when nothing closed), sorted by key.
    """
    if group_by not in ("source", "channel", "form", "utm_campaign"):
        raise ValidationFailed("channel_quality groups by source, channel, form or utm_campaign.")

    def outcome(stage: str) -> Exists:
        return Exists(
            StageTransition.objects.filter(
                lead_id=OuterRef("lead_id"), cycle=OuterRef("cycle"), to_stage=stage, at__gte=OuterRef("at")
            )
        )

    if _is_postgres():
        spans = {"won": ("sql_at", "customer_at"), "lost": ("sql_at", "lost_at")}
        data = _durations(None, ["grp"], spans, unit=86400, raw=_pg_quality_raw(since, until, group_by))
        rows = [
            {"grp": key[0], "sqls": entry["rows"], "won": entry["won"]["count"], "lost": entry["lost"]["count"]}
            for key, entry in data.items()
        ]
    else:
        rows = (
            StageTransition.objects.filter(to_stage="sql", at__gte=since, at__lt=until)
            .annotate(grp=_transition_grp(group_by), is_won=outcome("customer"), is_lost=outcome("lost"))
            .values("grp")
            .annotate(
                sqls=Count("id"),
                won=Count("id", filter=Q(is_won=True)),
                lost=Count("id", filter=Q(is_lost=True, is_won=False)),
            )
            .order_by()
        )
    result = [
        {
            "key": row["grp"],
            "label": str(row["grp"]) if row["grp"] not in (None, "") else "(none)",
            "sqls": row["sqls"],
            "won": row["won"],
            "lost": row["lost"],
            "open": row["sqls"] - row["won"] - row["lost"],
            "win_rate": _rate(row["won"], row["won"] + row["lost"]),
        }
        for row in rows
    ]
    return sorted(result, key=lambda r: _sort_key(r["key"]))


# --- reps against the SLA -----------------------------------------------------------------


def sla_report(*, since: datetime, until: datetime, sla_hours: float | None = None) -> dict:
    """Reps' response time against the SLA for leads assigned in ``[since, until)``.

    Uses the leads' current assignment (``assigned_at``, ``first_response_at``,
    ``sla_breached_at``) plus the ownership history for SLA reassignments. Three queries.

    Returns ``{"since", "until", "sla_hours", "reps": [R], "totals": R}`` where R is::

        {"owner_id", "label", "assigned", "responded", "waiting",
         "within_sla": responded in time and never marked breached,
         "breached": marked breached or answered later than the SLA,
         "reassigned_away": leads taken from this rep by the SLA in the period,
         "median_response_hours", "p90_response_hours"}
    """
    if sla_hours is None:
        sla_hours = current_sla_hours()
    window = timedelta(hours=sla_hours)
    response = ExpressionWrapper(F("first_response_at") - F("assigned_at"), output_field=DurationField())
    late = Q(sla_breached_at__isnull=False) | Q(first_response_at__isnull=False, response__gt=window)
    assigned = Lead.objects.filter(assigned_at__gte=since, assigned_at__lt=until, owner__isnull=False).annotate(
        response=response
    )
    counts = {
        row["owner_id"]: row
        for row in assigned.values("owner_id")
        .annotate(
            assigned=Count("id"),
            responded=Count("id", filter=Q(first_response_at__isnull=False)),
            breached=Count("id", filter=late),
            responded_late=Count("id", filter=Q(first_response_at__isnull=False) & late),
        )
        .order_by()
    }
    times = _durations(
        Lead.objects.filter(
            assigned_at__gte=since, assigned_at__lt=until, owner__isnull=False, first_response_at__isnull=False
        )
        .values("owner_id", "assigned_at", "first_response_at")
        .order_by(),
        ["owner_id"],
        {"response": ("assigned_at", "first_response_at")},
        unit=3600,
    )
    away = dict(
        LeadAssignment.objects.filter(cause=LeadAssignment.Cause.SLA, at__gte=since, at__lt=until)
        .exclude(from_owner__isnull=True)
        .values("from_owner_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("from_owner_id", "n")
    )
    owner_ids = sorted(set(counts) | set(away))
    labels = _labels("owner", owner_ids)
    reps = []
    for owner_id in owner_ids:
        row = counts.get(owner_id, {"assigned": 0, "responded": 0, "breached": 0, "responded_late": 0})
        stats = times.get((owner_id,), {}).get("response", {})
        reps.append(
            {
                "owner_id": owner_id,
                "label": labels[owner_id],
                "assigned": row["assigned"],
                "responded": row["responded"],
                "waiting": row["assigned"] - row["responded"],
                "within_sla": row["responded"] - row["responded_late"],
                "breached": row["breached"],
                "reassigned_away": away.get(owner_id, 0),
                "median_response_hours": stats.get("median"),
                "p90_response_hours": stats.get("p90"),
            }
        )
    totals = {
        "owner_id": None,
        "label": "All reps",
        **{
            name: sum(r[name] for r in reps)
            for name in ("assigned", "responded", "waiting", "within_sla", "breached", "reassigned_away")
        },
        "median_response_hours": None,
        "p90_response_hours": None,
    }
    return {"since": since, "until": until, "sla_hours": sla_hours, "reps": reps, "totals": totals}


# --- everything the funnel page shows ------------------------------------------------------


def funnel_report(*, since: datetime, until: datetime, group_by: str | None = None, view: str = "period") -> dict:
    """The funnel API's answer (uncached): ``view="cohort"`` → :func:`funnel_cohort`;
    ``view="period"`` → :func:`funnel_summary` plus ``stage_durations`` (its groups),
    ``channel_quality`` (``{"group_by", "groups"}``, by ``group_by`` when it is a lead
    attribute, else by channel) and ``sla`` (:func:`sla_report` without the period).
    Adds ``view`` and ``computed_at``.

    On PostgreSQL, called outside a transaction (an API request), the period view's time-in-stage
    and SLA sections are computed on a second connection while this one computes the rest, so the
    report's aggregates run on two cores at once. Inside a transaction (tests, a caller's atomic block) the
    sections run one after another, so they see that transaction's data.
    """
    if view not in ("period", "cohort"):
        raise ValidationFailed("view must be period or cohort.", fields={"view": ["Unknown view."]})
    concurrent = view == "period" and _is_postgres() and not connection.in_atomic_block
    pool = ThreadPoolExecutor(max_workers=1) if concurrent else None
    try:
        other_half = (
            pool.submit(_on_own_connection, _period_second_half, since=since, until=until, group_by=group_by)
            if pool is not None
            else None
        )
        with transaction.atomic():
            _tune_report_transaction()
            body = _funnel_report_body(
                since=since, until=until, group_by=group_by, view=view, second_half=other_half is None
            )
        if other_half is not None:
            body.update(other_half.result())
            body = {key: body[key] for key in _PERIOD_KEYS}  # the sequential order
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    body["view"] = view
    body["computed_at"] = timezone.now()
    return body


_PERIOD_KEYS = ("since", "until", "group_by", "totals", "groups", "stage_durations", "channel_quality", "sla")


def _tune_report_transaction() -> None:
    """PostgreSQL, for the current transaction: the percentiles sort tens of thousands of rows in
    memory, not on disk; parallel workers cost more to start than they save on queries this size."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('work_mem', %s, true), set_config('max_parallel_workers_per_gather', '0', true)",
                [ANALYTICS_WORK_MEM],
            )


def _on_own_connection(selector, **kwargs):
    """Run a read-only selector in this (worker) thread's own connection, then close it."""
    try:
        with transaction.atomic():
            _tune_report_transaction()
            return selector(**kwargs)
    finally:
        connection.close()


def _funnel_report_body(
    *, since: datetime, until: datetime, group_by: str | None, view: str, second_half: bool = True
) -> dict:
    if view == "cohort":
        return funnel_cohort(since=since, until=until, group_by=group_by)
    body = funnel_summary(since=since, until=until, group_by=group_by)
    quality_by = group_by if group_by in ("source", "channel", "form", "utm_campaign") else "channel"
    body["channel_quality"] = {
        "group_by": quality_by,
        "groups": channel_quality(since=since, until=until, group_by=quality_by),
    }
    if second_half:
        body.update(_period_second_half(since=since, until=until, group_by=group_by))
    return body


def _period_second_half(*, since: datetime, until: datetime, group_by: str | None) -> dict:
    """The period view's time in stage and SLA sections (about half of its database time)."""
    report = sla_report(since=since, until=until)
    return {
        "stage_durations": stage_durations(since=since, until=until, group_by=group_by)["groups"],
        "sla": {k: v for k, v in report.items() if k not in ("since", "until")},
    }

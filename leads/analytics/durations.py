"""Durations between two moments of a lead's history and their percentiles — the engine under
the cohort, channel quality and SLA reports — and the time-in-stage report built directly on it.
PostgreSQL computes the percentiles in the database; other databases get the same numbers in
Python (:func:`percentile_cont`)."""

import math
from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import F, OuterRef, Q, Subquery

from ..models import StageTransition
from .common import _labels, _scoped, _sort_key, _transition_grp
from .postgres import _is_postgres, _pg_durations_raw

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


# --- time in stage -------------------------------------------------------------------


def stage_durations(*, since: datetime, until: datetime, group_by: str | None = None, scope=None) -> dict:
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
        _scoped(StageTransition.objects.filter(at__gte=since, at__lt=until), scope, "lead_id")
        .annotate(grp=_transition_grp(group_by), stage=F("to_stage"), left_at=next_at)
        .values("grp", "stage", "at", "left_at")
        .order_by()
    )
    raw = _pg_durations_raw(since, until, group_by, scope) if _is_postgres() else None
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

"""The back-test's answer: candidate vs current side by side, and the leads that flip.

For each side's MQLs the recorded stage history says what really happened: offered to
sales at all (entered MQL/PQL), accepted (SAL), qualified (SQL), won (customer). Leads
that were never offered to sales have an unknown outcome, reported as such.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db.models import Count

from leads.models import Lead, StageTransition

from ...selectors import Ruleset
from .candidates import current_ruleset
from .replay import SideQualifications, replay

FLIPS_SHOWN = 100


def _outcomes(lead_ids: set[int]) -> dict[int, set[str]]:
    """{lead_id: stages it ever entered} from the recorded history, for the given leads (one query)."""
    reached: dict[int, set[str]] = {}
    if not lead_ids:
        return reached
    ids = sorted(lead_ids)
    for start in range(0, len(ids), 10000):
        rows = (
            StageTransition.objects.filter(
                lead_id__in=ids[start : start + 10000], to_stage__in=["mql", "pql", "sal", "sql", "customer"]
            )
            .values_list("lead_id", "to_stage")
            .distinct()
        )
        for lead_id, stage in rows:
            reached.setdefault(lead_id, set()).add(stage)
    return reached


def _side(quals: SideQualifications, reached: dict[int, set[str]]) -> dict:
    mqls = len(quals.at)
    offered = accepted = sql = won = 0
    for lead_id in quals.at:
        stages = reached.get(lead_id, set())
        if stages & {"mql", "pql", "sal", "sql", "customer"}:
            offered += 1
        if stages & {"sal", "sql", "customer"}:
            accepted += 1
        if stages & {"sql", "customer"}:
            sql += 1
        if "customer" in stages:
            won += 1
    return {
        "mqls": mqls,
        "offered_to_sales": offered,
        "outcome_unknown": mqls - offered,
        "accepted": accepted,
        "reached_sql": sql,
        "won": won,
        "acceptance_rate": round(accepted / offered, 4) if offered else None,
        "win_rate": round(won / mqls, 4) if mqls else None,
    }


def _flip_rows(ids: set[int], side: SideQualifications, reached: dict[int, set[str]]) -> list[dict]:
    shown = sorted(ids, key=lambda pk: (side.at[pk], pk))[:FLIPS_SHOWN]
    emails = dict(Lead.objects.filter(pk__in=shown).values_list("pk", "email"))
    rows = []
    for pk in shown:
        stages = reached.get(pk, set())
        furthest = next((s for s in ("customer", "sql", "sal", "mql", "pql") if s in stages), None)
        rows.append(
            {
                "lead": pk,
                "email": emails.get(pk, ""),
                "would_qualify_at": side.at[pk],
                "score": side.score[pk],
                "furthest_stage": furthest,
            }
        )
    return rows


def backtest_compare(
    *,
    candidate: Ruleset,
    current: Ruleset | None = None,
    since: datetime,
    until: datetime,
    lead_ids: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Candidate vs current, side by side, with the leads that flip in and out."""
    current = current or current_ruleset()
    quals = replay(
        {"current": current, "candidate": candidate}, since=since, until=until, lead_ids=lead_ids, progress=progress
    )
    cur, cand = quals["current"], quals["candidate"]
    reached = _outcomes(set(cur.at) | set(cand.at))
    # A flip is a lead one side makes an MQL in the period and the other never does (up to ``until``);
    # a lead both make an MQL, one of them before the period, only changes timing.
    flips_in = set(cand.at) - set(cur.at) - cur.before
    flips_out = set(cur.at) - set(cand.at) - cand.before
    earlier = (set(cand.at) & cur.before) | (set(cur.at) & cand.before)
    recorded = StageTransition.objects.filter(to_stage__in=["mql", "pql"], at__gte=since, at__lt=until).aggregate(
        n=Count("lead_id", distinct=True)
    )["n"]
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "current": {**_side(cur, reached), "mql_threshold": current.mql_threshold},
        "candidate": {**_side(cand, reached), "mql_threshold": candidate.mql_threshold},
        "recorded_mqls": recorded,
        "flips_in": {
            "count": len(flips_in),
            **_side(SideQualifications({k: cand.at[k] for k in flips_in}), reached),
            "leads": _flip_rows(flips_in, cand, reached),
        },
        "flips_out": {
            "count": len(flips_out),
            **_side(SideQualifications({k: cur.at[k] for k in flips_out}), reached),
            "leads": _flip_rows(flips_out, cur, reached),
        },
        "timing_changed": len(earlier),
        "notes": [
            "Profiles are today's; only the first qualification of each lead is simulated; PQL rules are not replayed.",
            "Outcomes come from the recorded history: leads never offered to sales have an unknown outcome.",
        ],
    }

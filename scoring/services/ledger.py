"""Writing scores: the contributions ledger (append), the per-rule running totals (upsert) and
the leads' score columns (only when they changed). Shared by live scoring, the recompute and decay."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Q

from leadfunnel.sql import bulk_insert, bulk_update
from leads.models import Lead

from ..engine import LeadScorer, Total
from ..models import LeadRuleTotal, ScoreContribution
from ..sql import CONTRIBUTION_COLUMNS, SCORE_COLUMNS, TOTAL_COLUMNS

_TOTALS_UPSERT = "(lead_id, rule_id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in TOTAL_COLUMNS[2:])


def load_totals(lead_ids: list[int]) -> dict[int, dict[int, Total]]:
    by_lead: dict[int, dict[int, Total]] = defaultdict(dict)
    for row in LeadRuleTotal.objects.filter(lead_id__in=lead_ids).values_list(
        "lead_id", "rule_id", "dimension", "matches", "raw_points", "points", "value", "value_at", "last_at"
    ):
        lead_id, rule_id, dimension, matches, raw, points, value, value_at, last_at = row
        by_lead[lead_id][rule_id] = Total(
            rule_id=rule_id,
            dimension=dimension,
            matches=matches,
            raw_points=raw,
            points=points,
            value=value,
            value_at=value_at,
            last_at=last_at,
            stored=True,
        )
    return by_lead


def write_ledger(scorers: dict[int, LeadScorer], *, now: datetime, incremental: bool) -> None:
    """Contributions (append) and totals (upsert) of the scorers, a statement each; incrementally,
    the profile rules that stopped matching lose their contribution and total first."""
    removed: dict[int, set[int]] = defaultdict(set)
    for lead_id, scorer in scorers.items():
        removed[lead_id].update(scorer.removed_profile_rules)
    removed = {lead_id: rules for lead_id, rules in removed.items() if rules}
    if removed and incremental:
        match = Q()
        for lead_id, rule_ids in removed.items():
            match |= Q(lead_id=lead_id, rule_id__in=sorted(rule_ids))
        ScoreContribution.objects.filter(match, source="profile").delete()
        LeadRuleTotal.objects.filter(match).delete()
    contribution_rows = [
        (lead_id, c.rule_id, c.dimension, c.source, c.points, c.reason[:500], c.at, c.interaction_id, c.field)
        for lead_id, scorer in scorers.items()
        for c in scorer.contributions
    ]
    total_rows = [
        (lead_id, t.rule_id, t.dimension, t.matches, t.raw_points, t.points, t.value, t.value_at or now, t.last_at)
        for lead_id, scorer in scorers.items()
        for t in scorer.totals.values()
        if t.dirty
    ]
    bulk_insert(ScoreContribution, CONTRIBUTION_COLUMNS, contribution_rows)
    bulk_insert(LeadRuleTotal, TOTAL_COLUMNS, total_rows, on_conflict=_TOTALS_UPSERT)


def changed_scores(stored: dict[int, dict], results: dict[int, object]) -> list[tuple[int, object]]:
    """The results that differ from the leads' stored score columns (or whose lead was never scored).

    Writing an unchanged score would rewrite the lead row and every index on it for nothing; its
    ``score_updated_at`` then says when the stored score last changed. Decaying engagement points
    differ at every new ``now``, so a lead with decaying rules is always written.
    """
    changed = []
    for lead_id, r in results.items():
        row = stored.get(lead_id)
        if (
            row is None
            or row["score_updated_at"] is None
            or row["score"] != r.score
            or row["fit_score"] != r.fit_score
            or row["engagement_score"] != r.engagement_score
            or row["fit_points"] != r.fit_points
            or row["engagement_points"] != r.engagement_points
            or row["mql_blocked"] != r.blocked
        ):
            changed.append((lead_id, r))
    return changed


def refresh_instance(lead: Lead, result, now: datetime | None, *, stored: dict) -> None:
    """Give the caller's instance what is now stored (``now`` None: the score was unchanged)."""
    lead.score = result.score
    lead.fit_score = result.fit_score
    lead.engagement_score = result.engagement_score
    lead.fit_points = result.fit_points
    lead.engagement_points = result.engagement_points
    lead.engagement_points_at = now or stored["engagement_points_at"]
    lead.mql_blocked = result.blocked
    lead.score_updated_at = now or stored["score_updated_at"]


def write_lead_scores(rows: list[tuple[int, object]], *, now: datetime) -> None:
    """One UPDATE for all the leads' score columns."""
    bulk_update(
        Lead,
        SCORE_COLUMNS,
        [
            (lead_id, r.score, r.fit_score, r.engagement_score, r.fit_points, r.engagement_points, now, r.blocked, now)
            for lead_id, r in rows
        ],
    )

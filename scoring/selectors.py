"""Scoring reads: the settings row, the active rule set (cached per process) and a lead's score."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from .install import scoring_install_defaults
from .models import LeadRuleTotal, RecomputeJob, ScoreContribution, ScoringRule, ScoringSettings
from .rules import DomainLists, RuleSpec, combined_score, compile_matcher, decay_factor, dimension_score


def scoring_settings_get() -> ScoringSettings:
    """The single settings row; created (with the default rule set) on first use."""
    settings_row = ScoringSettings.objects.filter(pk=ScoringSettings.SINGLETON_PK).first()
    if settings_row is not None:
        return settings_row
    try:
        with transaction.atomic():
            settings_row = ScoringSettings.objects.create(pk=ScoringSettings.SINGLETON_PK)
            scoring_install_defaults(settings_row=settings_row)
    except IntegrityError:
        # Another process created it first.
        settings_row = ScoringSettings.objects.get(pk=ScoringSettings.SINGLETON_PK)
    return settings_row


@dataclass
class Ruleset:
    """The active rules, indexed the way the engine needs them, plus the settings they run with."""

    key: tuple
    profile: list[RuleSpec]
    by_type: dict[str, list[RuleSpec]]
    by_id: dict[int, RuleSpec]
    lists: DomainLists
    mql_threshold: int
    sales_ready_threshold: int | None
    required_profile_fields: list[str]
    fit_weight: int
    engagement_weight: int
    pql_rule: dict
    version: int
    blocking_ids: frozenset[int] = field(default_factory=frozenset)
    # rule id → prepared matcher (scoring.rules.compile_matcher), filled once per ruleset.
    matchers: dict = field(default_factory=dict)

    def matcher(self, rule: RuleSpec):
        found = self.matchers.get(rule.id)
        if found is None:
            found = self.matchers[rule.id] = compile_matcher(rule.operator or "present", rule.value)
        return found

    @property
    def uses_channel_weight(self) -> bool:
        return any(r.use_channel_weight for r in self.by_type.get("form_submit", ()))

    @cached_property
    def scored_types(self) -> frozenset[str]:
        """Interaction types that can change a score or a stage: those some rule scores, plus the
        PQL rule's trial and usage events when it is on."""
        types = set(self.by_type)
        if self.pql_rule.get("enabled"):
            types |= {
                self.pql_rule.get("trial_type") or "trial_started",
                self.pql_rule.get("usage_type") or "product_usage",
            }
        return frozenset(types)


_cache_lock = threading.Lock()
_cache: dict[str, Ruleset] = {}


def _ruleset_key(settings_row: ScoringSettings) -> tuple:
    # updated_at too: a fresh database (tests, a restore) starts again at version 1.
    return (settings_row.version, settings_row.updated_at)


def ruleset_get(settings_row: ScoringSettings | None = None) -> Ruleset:
    """The active rules, loaded once per process per settings version (rule edits bump it)."""
    settings_row = settings_row or scoring_settings_get()
    key = _ruleset_key(settings_row)
    cached = _cache.get("current")
    if cached is not None and cached.key == key:
        return cached
    specs = [RuleSpec.from_obj(rule) for rule in ScoringRule.objects.filter(active=True).order_by("id")]
    by_type: dict[str, list[RuleSpec]] = {}
    for spec in specs:
        if spec.source == "interaction":
            by_type.setdefault(spec.interaction_type, []).append(spec)
    ruleset = Ruleset(
        key=key,
        profile=[s for s in specs if s.source == "profile"],
        by_type=by_type,
        by_id={s.id: s for s in specs},
        lists=DomainLists.from_settings(settings_row),
        mql_threshold=settings_row.mql_threshold,
        sales_ready_threshold=settings_row.sales_ready_threshold,
        required_profile_fields=list(settings_row.required_profile_fields or []),
        fit_weight=settings_row.fit_weight,
        engagement_weight=settings_row.engagement_weight,
        pql_rule=dict(settings_row.pql_rule or {}),
        version=settings_row.version,
        blocking_ids=frozenset(s.id for s in specs if s.blocks_mql),
    )
    with _cache_lock:
        _cache["current"] = ruleset
    return ruleset


def ruleset_forget() -> None:
    with _cache_lock:
        _cache.clear()


def rule_list():
    return ScoringRule.objects.order_by("id")


def recompute_job_latest() -> RecomputeJob | None:
    return RecomputeJob.objects.order_by("-created_at", "-id").first()


CONTRIBUTIONS_SHOWN = 500


def lead_score_get(*, lead, now: datetime | None = None) -> dict:
    """A lead's score as of now (decay applied lazily) with the explaining contributions.

    Two queries: the lead's per-rule totals and its newest contributions.
    """
    now = now or timezone.now()
    ruleset = ruleset_get()
    totals = list(LeadRuleTotal.objects.filter(lead_id=lead.pk).select_related("rule"))
    fit = engagement = 0.0
    blocked = False
    by_rule = []
    for total in totals:
        spec = ruleset.by_id.get(total.rule_id)
        if spec is None:
            continue  # inactive rule: its points no longer count (a recompute clears them)
        current = total.value * decay_factor(spec.half_life_days, total.value_at, now)
        if spec.dimension == "fit":
            fit += current
        else:
            engagement += current
        if spec.blocks_mql and total.matches:
            blocked = True
        by_rule.append(
            {
                "rule": total.rule_id,
                "name": spec.name,
                "dimension": spec.dimension,
                "matches": total.matches,
                "points": total.points,
                "current_points": round(current, 2),
                "capped": spec.max_points is not None and abs(total.raw_points) > abs(spec.max_points),
                "max_points": spec.max_points,
                "half_life_days": spec.half_life_days,
                "blocks_mql": spec.blocks_mql,
            }
        )
    fit_score = dimension_score(fit)
    engagement_score = dimension_score(engagement)
    contributions = []
    rows = (
        ScoreContribution.objects.filter(lead_id=lead.pk)
        .select_related("rule")
        .order_by("-at", "-id")[:CONTRIBUTIONS_SHOWN]
    )
    for row in rows:
        spec = ruleset.by_id.get(row.rule_id)
        half_life = spec.half_life_days if spec else None
        contributions.append(
            {
                "rule": row.rule_id,
                "rule_name": row.rule.name,
                "dimension": row.dimension,
                "points": row.points,
                "current_points": round(row.points * decay_factor(half_life, row.at, now), 2),
                "reason": row.reason,
                "at": row.at,
                "interaction": row.interaction_id,
                "field": row.field,
                "source": row.source,
                "active": spec is not None,
            }
        )
    score = combined_score(
        fit_score, engagement_score, fit_weight=ruleset.fit_weight, engagement_weight=ruleset.engagement_weight
    )
    return {
        "lead": lead.pk,
        "score": score,
        "sales_ready": ruleset.sales_ready_threshold is not None and score >= ruleset.sales_ready_threshold,
        "fit_score": fit_score,
        "engagement_score": engagement_score,
        "fit_points": round(fit, 2),
        "engagement_points": round(engagement, 2),
        "mql_blocked": blocked,
        "mql_threshold": ruleset.mql_threshold,
        "predicted_probability": lead.predicted_probability,
        "stored": {"score": lead.score, "at": lead.score_updated_at},
        "rules": by_rule,
        "contributions": contributions,
    }


def lead_rule_totals_many(
    *, lead_ids: list[int], per_lead: int = 5, now: datetime | None = None
) -> dict[int, list[dict]]:
    """Per lead, the active rules that give it most points now (decayed), in one query (queue cards)."""
    if not lead_ids:
        return {}
    now = now or timezone.now()
    ruleset = ruleset_get()
    result: dict[int, list[dict]] = {}
    for total in LeadRuleTotal.objects.filter(lead_id__in=lead_ids, matches__gt=0).exclude(points=0):
        spec = ruleset.by_id.get(total.rule_id)
        if spec is None:
            continue
        current = total.value * decay_factor(spec.half_life_days, total.value_at, now)
        result.setdefault(total.lead_id, []).append(
            {
                "rule": total.rule_id,
                "name": spec.name,
                "dimension": spec.dimension,
                "points": total.points,
                "current_points": round(current, 2),
                "at": total.last_at,
            }
        )
    for items in result.values():
        items.sort(key=lambda item: -abs(item["current_points"]))
        del items[per_lead:]
    return result


def lead_score_series(*, lead_id: int) -> list[dict]:
    """The lead's score points over time, from the contribution ledger: one point per instant
    at which rules gave points, ``total`` the cumulative sum of every point awarded up to it
    (as awarded: before decay). One grouped query."""
    rows = (
        ScoreContribution.objects.filter(lead_id=lead_id)
        .values("at")
        .annotate(points=Sum("points"))
        .order_by("at")
        .values_list("at", "points")
    )
    series, total = [], 0.0
    for at, points in rows:
        total += points
        series.append({"at": at, "points": round(points, 4), "total": round(total, 4)})
    return series

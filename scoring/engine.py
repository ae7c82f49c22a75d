"""The scoring arithmetic for one lead, shared by the incremental path and the full
recompute (so both give the same result by construction). No queries here:
callers load the lead's running totals, feed interactions and the profile, and
write back what :class:`LeadScorer` produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .rules import (
    RuleSpec,
    _dig,
    clamp_to_cap,
    combined_score,
    decay_factor,
    describe,
    dimension_score,
    profile_value,
)
from .selectors import Ruleset


@dataclass(slots=True)  # millions of these in a full recompute: no per-instance dict
class Total:
    """The running total of one rule for one lead (mirrors models.LeadRuleTotal)."""

    rule_id: int
    dimension: str
    matches: int = 0
    raw_points: float = 0.0
    points: float = 0.0
    value: float = 0.0
    value_at: datetime | None = None
    last_at: datetime | None = None
    stored: bool = False
    dirty: bool = False


@dataclass(slots=True)  # millions of these in a full recompute: no per-instance dict
class Contribution:
    rule_id: int
    dimension: str
    source: str
    points: float
    reason: str
    at: datetime
    interaction_id: int | None = None
    field: str = ""


@dataclass(slots=True)
class LeadScore:
    fit_points: float
    engagement_points: float
    fit_score: int
    engagement_score: int
    score: int
    blocked: bool


def form_slug_of(properties: Any) -> str:
    if not isinstance(properties, dict):
        return ""
    return str(properties.get("form_slug") or properties.get("form") or "")


def effective_at(occurred_at: datetime, received_at: datetime | None) -> datetime:
    """When an interaction counts from: never later than when we received it (no future points)."""
    if received_at is not None and received_at < occurred_at:
        return received_at
    return occurred_at


class LeadScorer:
    def __init__(
        self,
        *,
        lead_id: int,
        ruleset: Ruleset,
        totals: dict[int, Total],
        now: datetime,
        form_weights: dict[str, int] | None = None,
    ) -> None:
        self.lead_id = lead_id
        self.ruleset = ruleset
        self.totals = totals
        self.now = now
        self.form_weights = form_weights or {}
        self.contributions: list[Contribution] = []
        self.removed_profile_rules: list[int] = []
        self.interaction_types: set[str] = set()

    def _total(self, rule: RuleSpec) -> Total:
        total = self.totals.get(rule.id)
        if total is None:
            total = Total(rule_id=rule.id, dimension=rule.dimension, value_at=self.now)
            self.totals[rule.id] = total
        total.dimension = rule.dimension
        return total

    def _award(self, rule: RuleSpec, total: Total, raw: float, at: datetime) -> float:
        cap = rule.max_points
        if cap is None:  # clamp_to_cap without a cap, inlined (the hot path of a recompute)
            before = total.raw_points
            total.raw_points += raw
            awarded = total.raw_points - before
        else:
            before = clamp_to_cap(total.raw_points, cap)
            total.raw_points += raw
            awarded = clamp_to_cap(total.raw_points, cap) - before
        total.matches += 1
        total.last_at = at if total.last_at is None or at > total.last_at else total.last_at
        total.dirty = True
        now = self.now
        half_life = rule.half_life_days
        # A value already stated as of now decays by a factor of exactly 1: skip the arithmetic.
        if awarded:
            total.points += awarded
            if half_life:
                current = (
                    total.value if total.value_at is now else total.value * decay_factor(half_life, total.value_at, now)
                )
                total.value = current + awarded * decay_factor(half_life, at, now)
            else:
                total.value += awarded
        elif half_life and total.value_at is not now:
            total.value *= decay_factor(half_life, total.value_at, now)
        total.value_at = now
        return awarded

    def _describe(self, rule: RuleSpec) -> str:
        cache = self.ruleset.matchers
        key = ("describe", rule.id)
        text = cache.get(key)
        if text is None:
            text = cache[key] = describe(rule)
        return text

    def _profile_plan(self) -> list:
        """(rule, matcher, capped points, description) per profile rule, prepared once per ruleset."""
        cache = self.ruleset.matchers
        plan = cache.get("profile_plan")
        if plan is None:
            plan = cache["profile_plan"] = [
                (rule, self.ruleset.matcher(rule), clamp_to_cap(rule.points, rule.max_points), self._describe(rule))
                for rule in self.ruleset.profile
            ]
        return plan

    def _interaction_plan(self, type: str) -> list | None:
        """(rule, matcher or None) per interaction rule of a type, prepared once per ruleset."""
        cache = self.ruleset.matchers
        key = ("type_plan", type)
        plan = cache.get(key)
        if plan is None:
            rules = self.ruleset.by_type.get(type) or ()
            plan = cache[key] = [(rule, self.ruleset.matcher(rule) if rule.property else None) for rule in rules]
        return plan

    def _plain_reason(self, rule: RuleSpec) -> str:
        cache = self.ruleset.matchers  # per-ruleset cache (rule texts do not change within a version)
        key = ("reason", rule.id)
        text = cache.get(key)
        if text is None:
            text = describe(rule)
            if rule.half_life_days:
                text += f"; halves every {rule.half_life_days:g} days"
            cache[key] = text
        return text

    def apply_interaction(
        self,
        *,
        interaction_id: int | None,
        type: str,
        properties: dict,
        occurred_at: datetime,
        received_at: datetime | None = None,
    ) -> None:
        self.interaction_types.add(type)
        plan = self._interaction_plan(type)
        if not plan:
            return
        at = effective_at(occurred_at, received_at)
        properties = properties or {}
        for rule, match in plan:
            # Same test as rules.interaction_matches, with the rule's matcher prepared once.
            if match is not None and not match(_dig(properties, rule.property)):
                continue
            raw = rule.points
            note = ""
            if rule.use_channel_weight:
                slug = form_slug_of(properties)
                weight = self.form_weights.get(slug) if slug else None
                if weight is not None:
                    raw = float(weight)
                    note = f"; channel weight of form '{slug}'"
            if not raw:
                continue
            total = self._total(rule)
            awarded = self._award(rule, total, raw, at)
            if not awarded:
                continue
            if awarded == raw and not note:
                reason = self._plain_reason(rule)
            else:
                reason = self._describe(rule) + note
                if awarded != raw:
                    reason += f"; capped at {rule.max_points:g} (would have been {raw:+g})"
                if rule.half_life_days:
                    reason += f"; halves every {rule.half_life_days:g} days"
            self.contributions.append(
                Contribution(rule.id, rule.dimension, "interaction", awarded, reason, at, interaction_id, rule.property)
            )

    def apply_profile(self, profile: dict) -> None:
        """Re-evaluate every profile rule: add the newly matching, drop the ones that stopped matching."""
        totals = self.totals
        now = self.now
        for rule, match, awarded, description in self._profile_plan():
            shown = profile_value(profile, rule.field)
            matched = match(shown)
            total = totals.get(rule.id)
            if matched and total is not None and total.matches and total.points == awarded:
                continue  # unchanged
            if total is not None and total.stored:
                self.removed_profile_rules.append(rule.id)
            if not matched:
                if total is not None:
                    del totals[rule.id]
                continue
            total = Total(rule_id=rule.id, dimension=rule.dimension, value_at=now, dirty=True)
            total.matches = 1
            total.raw_points = rule.points
            total.points = total.value = awarded
            total.last_at = now
            totals[rule.id] = total
            reason = description
            if rule.operator not in ("present",) and shown not in (None, ""):
                reason += f": {rule.field} is '{str(shown)[:80]}'"
            if awarded != rule.points:
                reason += f"; capped at {rule.max_points:g}"
            self.contributions.append(
                Contribution(rule.id, rule.dimension, "profile", awarded, reason, self.now, None, rule.field)
            )

    def result(self) -> LeadScore:
        fit = engagement = 0.0
        blocked = False
        for rule_id, total in self.totals.items():
            rule = self.ruleset.by_id.get(rule_id)
            if rule is None:
                continue
            current = total.value * decay_factor(rule.half_life_days, total.value_at, self.now)
            if rule.dimension == "fit":
                fit += current
            else:
                engagement += current
            if rule.blocks_mql and total.matches:
                blocked = True
        fit_score = dimension_score(fit)
        engagement_score = dimension_score(engagement)
        return LeadScore(
            fit_points=fit,
            engagement_points=engagement,
            fit_score=fit_score,
            engagement_score=engagement_score,
            score=combined_score(
                fit_score,
                engagement_score,
                fit_weight=self.ruleset.fit_weight,
                engagement_weight=self.ruleset.engagement_weight,
            ),
            blocked=blocked,
        )

    def top_rules(self, limit: int = 5) -> list[dict]:
        rows = []
        for rule_id, total in self.totals.items():
            rule = self.ruleset.by_id.get(rule_id)
            if rule is None or not total.points:
                continue
            current = total.value * decay_factor(rule.half_life_days, total.value_at, self.now)
            rows.append({"rule": rule_id, "name": rule.name, "dimension": rule.dimension, "points": round(current, 2)})
        rows.sort(key=lambda r: -abs(r["points"]))
        return rows[:limit]


def profile_complete(profile: dict, required: list[str]) -> list[str]:
    """The required profile fields that are missing (empty list = complete)."""
    missing = []
    for name in required:
        value = profile_value(profile, name)
        if value is None or (isinstance(value, str) and not value.strip()) or value in ([], {}):
            missing.append(name)
    return missing

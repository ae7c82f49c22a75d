"""The replay: when each lead would first have qualified for MQL under a rule set.

The replay streams every lead (ordered by id) merged with its interactions
(ordered by lead, time) and feeds them to the scoring engine's own per-lead
arithmetic, :class:`scoring.engine.LeadScorer` (the same code the incremental
path and the full recompute use), once with the **current** rules and once with
the **candidate**. After the profile and after every interaction it asks the
engine for the score; the first moment a lead qualifies (score ≥ MQL
threshold, required profile present, no blocking negative) is when it would
have become an MQL. Leads whose first qualifying moment falls in
``[since, until)`` are that side's MQLs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from leads.models import Form

from ...engine import LeadScorer, effective_at, profile_complete
from ...rules import lead_profile
from ...selectors import Ruleset
from .streams import by_lead, interaction_stream, lead_stream

PROGRESS_EVERY = 2000


@dataclass
class SideQualifications:
    """The first moment each lead qualified, per side: in the period (``at``) or before it (``before``)."""

    at: dict[int, datetime] = field(default_factory=dict)
    score: dict[int, int] = field(default_factory=dict)
    # Leads that already qualified before the period (MQLs earlier, not in it).
    before: set[int] = field(default_factory=set)


def _same_scoring(a: Ruleset, b: Ruleset) -> bool:
    """Do two rule sets give every lead the same scores? (Then one replay serves both.)"""
    return (
        a.by_id == b.by_id
        and a.lists == b.lists
        and a.fit_weight == b.fit_weight
        and a.engagement_weight == b.engagement_weight
    )


def _score_can_rise_without_points(ruleset: Ruleset) -> bool:
    # Decaying negative points shrink towards 0 over time, so the score can rise between events.
    return any(rule.half_life_days and (rule.points < 0 or rule.use_channel_weight) for rule in ruleset.by_id.values())


def first_qualifications(
    scorer: LeadScorer,
    profile: dict,
    events: list[tuple],
    created_at: datetime,
    until: datetime,
    thresholds: dict[str, int],
) -> dict[str, tuple[datetime, int]]:
    """Replay one lead once for every side in ``thresholds`` (sides that share the scoring):
    {side: first (time, score) at which score ≥ its threshold without a blocking negative, before ``until``}.

    The score is checked after the profile and after every interaction that awarded points
    (between awards it can only fall, unless some negative points decay; then after every one).
    """
    hits: dict[str, tuple[datetime, int]] = {}
    if created_at >= until:
        return hits
    waiting = dict(thresholds)
    every_event = _score_can_rise_without_points(scorer.ruleset)
    scorer.now = created_at
    scorer.apply_profile(profile)

    def check(at: datetime) -> None:
        result = scorer.result()
        if result.blocked:
            return
        for side, threshold in list(waiting.items()):
            if result.score >= threshold:
                hits[side] = (at, result.score)
                del waiting[side]

    check(created_at)
    for interaction_id, itype, properties, occurred_at, received_at in events:
        if not waiting:
            break
        at = effective_at(occurred_at, received_at)
        if at >= until:
            break
        scorer.now = max(at, created_at)
        awarded_before = len(scorer.contributions)
        scorer.apply_interaction(
            interaction_id=interaction_id,
            type=itype,
            properties=properties,
            occurred_at=occurred_at,
            received_at=received_at,
        )
        # Only points gained can lift the score (a negative award or none cannot).
        if every_event or any(c.points > 0 for c in scorer.contributions[awarded_before:]):
            check(scorer.now)
    return hits


def first_qualification(
    scorer: LeadScorer, ruleset: Ruleset, profile: dict, events: list[tuple], created_at: datetime, until: datetime
) -> tuple[datetime, int] | None:
    """Replay one lead under one rule set: the first (time, score) at which it qualifies before ``until``."""
    if profile_complete(profile, ruleset.required_profile_fields):
        return None  # missing required profile: never qualifies (the profile is today's)
    hits = first_qualifications(scorer, profile, events, created_at, until, {"side": ruleset.mql_threshold})
    return hits.get("side")


def replay(
    rulesets: dict[str, Ruleset],
    *,
    since: datetime,
    until: datetime,
    lead_ids: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, SideQualifications]:
    """Stream the history once and replay every side. Returns each side's qualifications.

    Sides whose rules, lists and weights are equal (e.g. a candidate that only moves the
    threshold) share one replay per lead; only the threshold and required fields differ.
    """
    form_weights = dict(Form.objects.values_list("slug", "channel_weight"))
    out = {name: SideQualifications() for name in rulesets}
    groups: list[list[str]] = []
    for name, ruleset in rulesets.items():
        for group in groups:
            if _same_scoring(rulesets[group[0]], ruleset):
                group.append(name)
                break
        else:
            groups.append([name])
    types = {itype for ruleset in rulesets.values() for itype in ruleset.by_type}
    property_types = {
        itype
        for ruleset in rulesets.values()
        for itype, rules in ruleset.by_type.items()
        if any(rule.property or rule.use_channel_weight for rule in rules)
    }
    events_by_lead = by_lead(interaction_stream(until, lead_ids, types, property_types))
    pending = next(events_by_lead, None)
    done = 0
    for lead_id, created_at, columns in lead_stream(lead_ids):
        while pending is not None and pending[0] < lead_id:  # interactions of a lead deleted meanwhile
            pending = next(events_by_lead, None)
        events: list[tuple] = []
        if pending is not None and pending[0] == lead_id:
            events = pending[1]
            pending = next(events_by_lead, None)
        for group in groups:
            ruleset = rulesets[group[0]]
            profile = lead_profile(columns, ruleset.lists)
            # Missing required profile: that side never qualifies (the profile is today's).
            thresholds = {
                name: rulesets[name].mql_threshold
                for name in group
                if not profile_complete(profile, rulesets[name].required_profile_fields)
            }
            if not thresholds:
                continue
            scorer = LeadScorer(lead_id=lead_id, ruleset=ruleset, totals={}, now=created_at, form_weights=form_weights)
            for name, (at, score) in first_qualifications(
                scorer, profile, events, created_at, until, thresholds
            ).items():
                if at >= since:
                    out[name].at[lead_id] = at
                    out[name].score[lead_id] = score
                else:
                    out[name].before.add(lead_id)
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done)
    if progress is not None:
        progress(done)
    return out

"""The replay: when each lead would first have qualified for MQL under a rule set.

The replay streams every lead (ordered by id) merged with its interactions
(ordered by lead, time) and feeds them to the scoring engine's own per-lead
arithmetic, :class:`scoring.engine.LeadScorer` (the same code the incremental
path and the full recompute use), once with the **current** rules and once with
the **candidate**. After the profile and after every interaction it asks the
engine for the score; the first moment a lead qualifies — as decided by the one
MQL predicate, :func:`scoring.qualification.qualifies_for_mql` (score ≥ MQL
threshold, required profile present, no blocking negative) — is when it would
have become an MQL. Leads whose first qualifying moment falls in
``[since, until)`` are that side's MQLs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from leads.models import Form

from ...engine import LeadScorer, effective_at
from ...qualification import qualifies_for_mql
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
    sides: Mapping[str, Ruleset],
) -> dict[str, tuple[datetime, int]]:
    """Replay one lead once for every side in ``sides`` (rule sets that share the scoring, each
    with its own threshold and required profile fields): {side: the first (time, score) before
    ``until`` at which :func:`qualifies_for_mql` says the lead qualifies}.

    The score is checked after the profile and after every interaction that awarded points
    (between awards it can only fall, unless some negative points decay; then after every one).
    The profile is today's and does not change during the replay, so the predicate tests the
    required fields at the first check only: a side missing one is dropped (it never qualifies),
    and the later checks of the other sides ask it about the score and blocking alone.
    """
    hits: dict[str, tuple[datetime, int]] = {}
    if created_at >= until:
        return hits
    # side → the required profile fields the next check tests: all of them first, none after.
    waiting = {side: list(ruleset.required_profile_fields) for side, ruleset in sides.items()}
    every_event = _score_can_rise_without_points(scorer.ruleset)
    scorer.now = created_at
    scorer.apply_profile(profile)

    def check(at: datetime) -> None:
        result = scorer.result()
        for side, required in list(waiting.items()):
            mql = qualifies_for_mql(
                score=result.score,
                blocked=result.blocked,
                profile=profile,
                threshold=sides[side].mql_threshold,
                required_profile_fields=required,
            )
            if mql.ok:
                hits[side] = (at, result.score)
                del waiting[side]
            elif mql.missing_profile:
                del waiting[side]  # the profile is today's: this side never qualifies
            elif required:
                waiting[side] = []  # the profile passed; only the score and blocking change now

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
    """Replay one lead under one rule set (a batch of one side): the first (time, score) at which it
    qualifies before ``until``, or None."""
    return first_qualifications(scorer, profile, events, created_at, until, {"side": ruleset}).get("side")


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
    group_sides = [{name: rulesets[name] for name in group} for group in groups]
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
        for sides in group_sides:
            ruleset = next(iter(sides.values()))
            profile = lead_profile(columns, ruleset.lists)
            scorer = LeadScorer(lead_id=lead_id, ruleset=ruleset, totals={}, now=created_at, form_weights=form_weights)
            for name, (at, score) in first_qualifications(scorer, profile, events, created_at, until, sides).items():
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

"""Live scoring: the rules applied to new interactions and profile changes, incrementally, for
one lead or many in the same statements. The leads app calls :func:`score_leads` inside the
transaction that stored the events; its query count does not grow with the leads' history:

1. the settings row (the rule set itself comes from a per-process cache keyed by its version),
2. the lead rows, locked ``SELECT … FOR UPDATE`` (concurrent events on one lead are serialised
   and never lose points),
3. the leads' per-rule running totals (at most one row per rule),
4. (only for form submissions under a channel-weight rule) the forms' weights,
5. INSERT of the new contributions, 6. upsert of the changed totals, 7. UPDATE of the leads' scores
   (one statement each); the PQL check adds two reads when product events arrived.

Scoring never moves a lead: it answers the :class:`~scoring.qualification.Qualification` of each
lead that now qualifies, and the :class:`~scoring.qualification.Expansion` of each customer whose
new events match ``EXPANSION_SIGNALS`` (no extra query), and the leads app applies them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from leads.models import Form, Interaction, InteractionType, Lead, Stage

from ..engine import LeadScorer, form_slug_of
from ..qualification import PROMOTABLE, Expansion, Qualification, qualifies_for_mql
from ..rules import lead_profile, pql_reached
from ..rules.expansion import expansion_match, expansion_signals_parse
from ..selectors import Ruleset, ruleset_get, scoring_settings_get
from ..sql import locked_leads_by_id
from .ledger import changed_scores, load_totals, refresh_instance, write_lead_scores, write_ledger


@dataclass
class ScoreOutcome:
    """What live scoring decided: the leads that now qualify for MQL/PQL, with the reasons."""

    qualifications: list[Qualification] = field(default_factory=list)
    # Customers whose new events match EXPANSION_SIGNALS (service qualified), one per lead.
    expansions: list[Expansion] = field(default_factory=list)


def score_leads(
    *,
    interactions: list[Interaction],
    profile_lead_ids: set[int] | None = None,
    caller_leads: dict[int, Lead] | None = None,
) -> ScoreOutcome:
    """Apply the scoring rules to newly stored interactions and to the profiles of
    ``profile_lead_ids`` (one pass per lead: a form submission that changes the profile and adds
    an interaction is scored once). ``caller_leads``: the caller's Lead objects by id, given the
    stored score columns."""
    profile_lead_ids = set(profile_lead_ids or ())
    if not interactions and not profile_lead_ids:
        return ScoreOutcome()
    lead_ids = sorted({i.lead_id for i in interactions} | profile_lead_ids)
    return _score(
        lead_ids=lead_ids, interactions=interactions, profile_lead_ids=profile_lead_ids, caller_leads=caller_leads or {}
    )


def score_interactions(*, lead: Lead, interactions: list[Interaction], profile_changed: bool = False) -> ScoreOutcome:
    """:func:`score_leads` for one lead."""
    return score_leads(
        interactions=interactions,
        profile_lead_ids={lead.pk} if profile_changed else set(),
        caller_leads={lead.pk: lead},
    )


def score_interactions_bulk(*, interactions: list[Interaction]) -> ScoreOutcome:
    """:func:`score_leads` for many leads' interactions."""
    return score_leads(interactions=interactions)


def score_profile_change(*, lead: Lead) -> ScoreOutcome:
    """:func:`score_leads` for one lead whose profile changed."""
    return score_leads(interactions=[], profile_lead_ids={lead.pk}, caller_leads={lead.pk: lead})


def _form_weights(ruleset: Ruleset, interactions: Iterable[Interaction]) -> dict[str, int]:
    if not ruleset.uses_channel_weight:
        return {}
    slugs = {form_slug_of(i.properties) for i in interactions if i.type == InteractionType.FORM_SUBMIT}
    slugs.discard("")
    if not slugs:
        return {}
    return dict(Form.objects.filter(slug__in=slugs).values_list("slug", "channel_weight"))


@transaction.atomic(savepoint=False)  # runs inside the caller's transaction; no savepoint round-trips
def _score(
    *,
    lead_ids: list[int],
    interactions: list[Interaction],
    profile_lead_ids: set[int],
    caller_leads: dict[int, Lead],
) -> ScoreOutcome:
    now = timezone.now()
    settings_row = scoring_settings_get()
    ruleset = ruleset_get(settings_row)
    # Lock in id order: two bulk requests touching the same leads cannot deadlock.
    locked = locked_leads_by_id(lead_ids)
    by_lead: dict[int, list[Interaction]] = defaultdict(list)
    for interaction in interactions:
        by_lead[interaction.lead_id].append(interaction)
    # An event no rule looks at (and the PQL rule does not count), e.g. ``email_sent`` without a
    # rule for it, cannot change a score already stored: such leads are left alone (decay is the
    # periodic task's job). A lead never scored, or whose profile changed, is always scored.
    relevant = ruleset.scored_types
    leads = {
        row["id"]: row
        for row in locked
        if row["id"] in profile_lead_ids
        or row["score_updated_at"] is None
        or any(i.type in relevant for i in by_lead.get(row["id"], ()))
    }
    expansions = _expansions(locked, by_lead)
    if not leads:
        return ScoreOutcome(expansions=expansions)
    totals = load_totals(list(leads))
    weights = _form_weights(ruleset, interactions)

    scorers: dict[int, LeadScorer] = {}
    for lead_id, row in leads.items():
        scorer = LeadScorer(
            lead_id=lead_id, ruleset=ruleset, totals=totals.get(lead_id, {}), now=now, form_weights=weights
        )
        # A lead never scored before gets its profile rules evaluated with its first interaction.
        if lead_id in profile_lead_ids or row["score_updated_at"] is None:
            scorer.apply_profile(lead_profile(row, ruleset.lists))
        for interaction in by_lead.get(lead_id, ()):
            scorer.apply_interaction(
                interaction_id=interaction.pk,
                type=interaction.type,
                properties=interaction.properties,
                occurred_at=interaction.occurred_at,
                received_at=interaction.received_at,
            )
        scorers[lead_id] = scorer

    write_ledger(scorers, now=now, incremental=True)
    results = {lead_id: scorer.result() for lead_id, scorer in scorers.items()}
    changed = changed_scores(leads, results)
    write_lead_scores(changed, now=now)
    changed_ids = {lead_id for lead_id, _ in changed}
    for lead_id, result in results.items():
        lead = caller_leads.get(lead_id)
        if lead is not None:
            refresh_instance(lead, result, now if lead_id in changed_ids else None, stored=leads[lead_id])

    return ScoreOutcome(
        qualifications=_qualifications(
            ruleset=ruleset, leads=leads, scorers=scorers, results=results, interactions=interactions
        ),
        expansions=expansions,
    )


def _expansions(locked: list[dict], by_lead: dict[int, list[Interaction]]) -> list[Expansion]:
    """Customers among these leads whose new events match an expansion signal (no query: the
    rows are the ones already locked for scoring)."""
    signals = expansion_signals()
    if not signals:
        return []
    found = []
    for row in locked:
        if row["stage"] != Stage.CUSTOMER:
            continue
        for interaction in by_lead.get(row["id"], ()):
            signal = expansion_match(signals, interaction.type, interaction.properties)
            if signal is not None:
                found.append(
                    Expansion(
                        lead_id=row["id"],
                        interaction_id=interaction.pk,
                        signal=str(signal),
                        reason=f"Existing customer signalled expansion: {signal}.",
                    )
                )
                break
    return found


def expansion_signals() -> tuple:
    """``EXPANSION_SIGNALS`` as parsed signals (settings validated them at start)."""
    return _parsed_signals(settings.EXPANSION_SIGNALS)


@lru_cache(maxsize=8)
def _parsed_signals(raw: str) -> tuple:
    return expansion_signals_parse(raw, known_types=frozenset(InteractionType.values))


def _pql_leads(ruleset: Ruleset, candidates: list[int]) -> set[int]:
    """Which of these leads meet the PQL rule (two queries, only when product events arrived)."""
    rule = ruleset.pql_rule
    if not candidates or not rule.get("enabled"):
        return set()
    trial_type = rule.get("trial_type") or InteractionType.TRIAL_STARTED
    usage_type = rule.get("usage_type") or InteractionType.PRODUCT_USAGE
    trials: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, at in Interaction.objects.filter(lead_id__in=candidates, type=trial_type).values_list(
        "lead_id", "occurred_at"
    ):
        trials[lead_id].append(at)
    if not trials:
        return set()
    earliest = min(min(v) for v in trials.values())
    usage: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, at in Interaction.objects.filter(
        lead_id__in=list(trials), type=usage_type, occurred_at__gte=earliest
    ).values_list("lead_id", "occurred_at"):
        usage[lead_id].append(at)
    return {
        lead_id
        for lead_id in trials
        if pql_reached(rule, trial_times=trials[lead_id], usage_times=usage.get(lead_id, []))
    }


def _qualifications(
    *,
    ruleset: Ruleset,
    leads: dict[int, dict],
    scorers: dict[int, LeadScorer],
    results: dict,
    interactions: list[Interaction],
) -> list[Qualification]:
    """Visitors (and recycled leads that cross the threshold again) that now qualify for MQL or PQL,
    in the order of their latest event in the batch (the order one event at a time would route
    them to reps in).

    Never demotes: a lead below the threshold keeps its stage (and its rep). A recycled lead comes
    back only by crossing the threshold from below, so a rep's rejection is not undone by the next
    page view.
    """
    promotable = {lead_id: row for lead_id, row in leads.items() if row["stage"] in PROMOTABLE}
    if not promotable:
        return []
    latest = {i.lead_id: n for n, i in enumerate(interactions)}
    promotable = dict(sorted(promotable.items(), key=lambda item: (latest.get(item[0], -1), item[0])))
    pql_rule = ruleset.pql_rule
    pql_ids: set[int] = set()
    if pql_rule.get("enabled"):
        product_types = {pql_rule.get("trial_type") or "trial_started", pql_rule.get("usage_type") or "product_usage"}
        candidates = [lead_id for lead_id in promotable if scorers[lead_id].interaction_types & product_types]
        pql_ids = _pql_leads(ruleset, candidates)
    qualifications: list[Qualification] = []
    for lead_id, row in promotable.items():
        result = results[lead_id]
        is_pql = lead_id in pql_ids and not result.blocked
        if not is_pql:
            check = qualifies_for_mql(
                score=result.score,
                blocked=result.blocked,
                profile=lead_profile(row, ruleset.lists),
                threshold=ruleset.mql_threshold,
                required_profile_fields=ruleset.required_profile_fields,
            )
            crossed = row["stage"] == Stage.VISITOR or (row["score"] or 0) < ruleset.mql_threshold
            if not (check.ok and crossed):
                continue
        scorer = scorers[lead_id]
        details = {
            "score": result.score,
            "fit_score": result.fit_score,
            "engagement_score": result.engagement_score,
            "threshold": ruleset.mql_threshold,
            "rules": scorer.top_rules(),
            "scoring_version": ruleset.version,
        }
        if is_pql:
            details["pql_rule"] = pql_rule
            qualifications.append(
                Qualification(
                    lead_id=lead_id,
                    to_stage=Stage.PQL,
                    cause_ref="pql_rule",
                    reason=(
                        f"PQL rule: {pql_rule.get('trial_type', 'trial_started')} and at least "
                        f"{pql_rule.get('min_usage')} {pql_rule.get('usage_type', 'product_usage')} events "
                        f"within {pql_rule.get('within_days')} days."
                    ),
                    details=details,
                    expected_from=PROMOTABLE,
                )
            )
            continue
        top = details["rules"][:1]
        qualifications.append(
            Qualification(
                lead_id=lead_id,
                to_stage=Stage.MQL,
                cause_ref=f"rule:{top[0]['rule']}" if top else "score",
                reason=(
                    f"Score {result.score} reached the MQL threshold {ruleset.mql_threshold} "
                    f"(fit {result.fit_score}, engagement {result.engagement_score}); required profile present."
                ),
                details=details,
                expected_from=PROMOTABLE,
            )
        )
    return qualifications

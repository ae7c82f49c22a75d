"""Scoring writes. The leads app calls the three entry points inside the transaction
that stores interactions or profile changes; they keep the lead's scores current
incrementally, with a query count that does not grow with the lead's history:

1. the settings row (the rule set itself comes from a per-process cache keyed by
   the settings version),
2. the lead rows, locked ``SELECT … FOR UPDATE`` (so concurrent interactions on
   one lead are serialised and never lose points),
3. the leads' per-rule running totals (at most one row per rule),
4. (only for form submissions under a channel-weight rule) the forms' weights,
5. INSERT of the new contributions (one statement),
6. upsert of the changed totals (one statement),
7. UPDATE of the leads' scores (one statement).

A profile change may add the DELETE of the profile rules that stopped matching;
a promotion adds what ``leads.promotion.leads_promote_many`` does (a constant number
of statements, however many leads the call promotes).
"""

from __future__ import annotations

import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import NotFound, ValidationFailed
from leads.models import Form, Interaction, InteractionType, Lead, Stage

from .engine import LeadScorer, Total, profile_complete
from .models import (
    LeadRuleTotal,
    RecomputeJob,
    RecomputeRange,
    ScoreContribution,
    ScoringRule,
    ScoringSettings,
)
from .rules import PROFILE_COLUMNS, lead_profile, pql_reached, rule_errors
from .selectors import Ruleset, ruleset_get, scoring_settings_get

logger = logging.getLogger(__name__)

# Stages a lead can be promoted from automatically.
PROMOTABLE = (Stage.VISITOR, Stage.RECYCLED)
SCORE_COLUMNS = (
    "score",
    "fit_score",
    "engagement_score",
    "fit_points",
    "engagement_points",
    "engagement_points_at",
    "mql_blocked",
    "score_updated_at",
)
_LEAD_COLUMNS = ("id", "stage", "owner_id", *PROFILE_COLUMNS, *SCORE_COLUMNS)


# --- the incremental path ---------------------------------------------------------


def score_interactions(*, lead: Lead, interactions: list[Interaction], profile_changed: bool = False) -> None:
    """Apply the scoring rules to newly stored interactions of one lead (incremental).

    ``profile_changed`` re-evaluates the profile (fit) rules in the same pass, so a form
    submission that changes the profile and adds an interaction is scored once.
    """
    if not interactions and not profile_changed:
        return
    _score(
        lead_ids=[lead.pk],
        interactions=interactions,
        profile_lead_ids={lead.pk} if profile_changed else set(),
        caller_leads={lead.pk: lead},
    )


def score_interactions_bulk(*, interactions: list[Interaction]) -> None:
    """Set-based variant for the bulk endpoint: many leads, many interactions, same query count."""
    if not interactions:
        return
    lead_ids = sorted({i.lead_id for i in interactions})
    _score(lead_ids=lead_ids, interactions=interactions, profile_lead_ids=set(), caller_leads={})


def score_profile_change(*, lead: Lead) -> None:
    """Re-evaluate the profile (fit) rules of one lead after its fields changed."""
    _score(lead_ids=[lead.pk], interactions=[], profile_lead_ids={lead.pk}, caller_leads={lead.pk: lead})


def _form_weights(ruleset: Ruleset, interactions: Iterable[Interaction]) -> dict[str, int]:
    if not ruleset.uses_channel_weight:
        return {}
    from .engine import form_slug_of

    slugs = {form_slug_of(i.properties) for i in interactions if i.type == InteractionType.FORM_SUBMIT}
    slugs.discard("")
    if not slugs:
        return {}
    return dict(Form.objects.filter(slug__in=slugs).values_list("slug", "channel_weight"))


def _load_totals(lead_ids: list[int]) -> dict[int, dict[int, Total]]:
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


@transaction.atomic(savepoint=False)  # runs inside the caller's transaction; no savepoint round-trips
def _score(
    *,
    lead_ids: list[int],
    interactions: list[Interaction],
    profile_lead_ids: set[int],
    caller_leads: dict[int, Lead],
) -> None:
    now = timezone.now()
    settings_row = scoring_settings_get()
    ruleset = ruleset_get(settings_row)
    # Lock in id order: two bulk requests touching the same leads cannot deadlock.
    locked = _locked_leads_by_id(lead_ids)
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
    if not leads:
        return
    totals = _load_totals(list(leads))
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

    _write(scorers, now=now, incremental=True)
    results = {lead_id: scorer.result() for lead_id, scorer in scorers.items()}
    changed = _changed_scores(leads, results)
    _write_lead_scores(changed, now=now)
    changed_ids = {lead_id for lead_id, _ in changed}
    for lead_id, result in results.items():
        lead = caller_leads.get(lead_id)
        if lead is not None:
            _refresh_instance(lead, result, now if lead_id in changed_ids else None, stored=leads[lead_id])

    _promote(
        ruleset=ruleset,
        leads=leads,
        scorers=scorers,
        results=results,
        caller_leads=caller_leads,
        check_pql=True,
    )


def _changed_scores(stored: dict[int, dict], results: dict[int, object]) -> list[tuple[int, object]]:
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


def _refresh_instance(lead: Lead, result, now: datetime | None, *, stored: dict) -> None:
    """Give the caller's instance what is now stored (``now`` None: the score was unchanged)."""
    lead.score = result.score
    lead.fit_score = result.fit_score
    lead.engagement_score = result.engagement_score
    lead.fit_points = result.fit_points
    lead.engagement_points = result.engagement_points
    lead.engagement_points_at = now or stored["engagement_points_at"]
    lead.mql_blocked = result.blocked
    lead.score_updated_at = now or stored["score_updated_at"]


def _write(scorers: dict[int, LeadScorer], *, now: datetime, incremental: bool) -> None:
    """Contributions (append) and totals (upsert) of the scorers, a statement each."""
    removed = [(lead_id, rule_id) for lead_id, s in scorers.items() for rule_id in s.removed_profile_rules]
    if removed and incremental:
        lead_ids = {lead_id for lead_id, _ in removed}
        rule_ids = {rule_id for _, rule_id in removed}
        # Narrowed in Python below when several leads are involved (rare: profile changes are per lead).
        if len(lead_ids) == 1:
            (lead_id,) = lead_ids
            ScoreContribution.objects.filter(lead_id=lead_id, rule_id__in=rule_ids, source="profile").delete()
            LeadRuleTotal.objects.filter(lead_id=lead_id, rule_id__in=rule_ids).delete()
        else:  # pragma: no cover - profile changes arrive one lead at a time
            for lead_id, rule_id in removed:
                ScoreContribution.objects.filter(lead_id=lead_id, rule_id=rule_id, source="profile").delete()
                LeadRuleTotal.objects.filter(lead_id=lead_id, rule_id=rule_id).delete()

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
    if connection.vendor == "postgresql":
        # Plain multi-row INSERTs: the hot path skips building model instances.
        _insert_rows(ScoreContribution._meta.db_table, CONTRIBUTION_COLUMNS, contribution_rows)
        _insert_rows(
            LeadRuleTotal._meta.db_table,
            TOTAL_COLUMNS,
            total_rows,
            on_conflict="(lead_id, rule_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in TOTAL_COLUMNS[2:]),
        )
        return
    if contribution_rows:
        ScoreContribution.objects.bulk_create(
            [ScoreContribution(**dict(zip(CONTRIBUTION_COLUMNS, row, strict=True))) for row in contribution_rows],
            batch_size=5000,
        )
    if total_rows:
        LeadRuleTotal.objects.bulk_create(
            [LeadRuleTotal(**dict(zip(TOTAL_COLUMNS, row, strict=True))) for row in total_rows],
            batch_size=5000,
            update_conflicts=True,
            unique_fields=["lead", "rule"],
            update_fields=["dimension", "matches", "raw_points", "points", "value", "value_at", "last_at"],
        )


CONTRIBUTION_COLUMNS = (
    "lead_id",
    "rule_id",
    "dimension",
    "source",
    "points",
    "reason",
    "at",
    "interaction_id",
    "field",
)
TOTAL_COLUMNS = ("lead_id", "rule_id", "dimension", "matches", "raw_points", "points", "value", "value_at", "last_at")
_INSERT_CHUNK = 5000


def _insert_rows(table: str, columns: tuple[str, ...], rows: list[tuple], on_conflict: str = "") -> None:
    if not rows:
        return
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 - fixed names, values as params
                + ", ".join([placeholder] * len(chunk))
                + (f" ON CONFLICT {on_conflict}" if on_conflict else "")
            )
            cursor.execute(sql, [value for row in chunk for value in row])


def _write_lead_scores(rows: list[tuple[int, object]], *, now: datetime) -> None:
    """One UPDATE for all the leads' score columns."""
    if not rows:
        return
    if len(rows) == 1:
        lead_id, r = rows[0]
        Lead.objects.filter(pk=lead_id).update(
            score=r.score,
            fit_score=r.fit_score,
            engagement_score=r.engagement_score,
            fit_points=r.fit_points,
            engagement_points=r.engagement_points,
            engagement_points_at=now,
            mql_blocked=r.blocked,
            score_updated_at=now,
        )
        return
    if connection.vendor == "postgresql":
        table = Lead._meta.db_table
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        params: list = []
        for lead_id, r in rows:
            params += [lead_id, r.score, r.fit_score, r.engagement_score, r.fit_points, r.engagement_points, r.blocked]
        sql = (
            f"UPDATE {table} AS l SET score = v.score, fit_score = v.fit, engagement_score = v.eng, "  # noqa: S608
            "fit_points = v.fitp, engagement_points = v.engp, mql_blocked = v.blocked, "
            "engagement_points_at = %s, score_updated_at = %s "
            f"FROM (VALUES {values}) AS v(id, score, fit, eng, fitp, engp, blocked) "
            "WHERE l.id = v.id::bigint"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, now, *params])
        return
    objs = []
    for lead_id, r in rows:
        objs.append(
            Lead(
                pk=lead_id,
                score=r.score,
                fit_score=r.fit_score,
                engagement_score=r.engagement_score,
                fit_points=r.fit_points,
                engagement_points=r.engagement_points,
                engagement_points_at=now,
                mql_blocked=r.blocked,
                score_updated_at=now,
            )
        )
    Lead.objects.bulk_update(objs, list(SCORE_COLUMNS), batch_size=500)


# --- promotion --------------------------------------------------------------------


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


def _eligible_for_mql(ruleset: Ruleset, row: dict, result) -> tuple[bool, list[str]]:
    missing = profile_complete(lead_profile(row, ruleset.lists), ruleset.required_profile_fields)
    ok = result.score >= ruleset.mql_threshold and not missing and not result.blocked
    return ok, missing


def _promote(
    *,
    ruleset: Ruleset,
    leads: dict[int, dict],
    scorers: dict[int, LeadScorer],
    results: dict,
    caller_leads: dict[int, Lead],
    check_pql: bool,
) -> int:
    """Promote visitors (and recycled leads that cross the threshold again) to MQL or PQL.

    Never demotes: a lead below the threshold keeps its stage (and its rep).
    A recycled lead comes back only by crossing the threshold from below, so a
    rep's rejection is not undone by the next page view.
    """
    from leads.promotion import Promotion, leads_promote_many

    promotable = {lead_id: row for lead_id, row in leads.items() if row["stage"] in PROMOTABLE}
    if not promotable:
        return 0
    pql_rule = ruleset.pql_rule
    pql_ids: set[int] = set()
    if check_pql and pql_rule.get("enabled"):
        product_types = {pql_rule.get("trial_type") or "trial_started", pql_rule.get("usage_type") or "product_usage"}
        candidates = [lead_id for lead_id in promotable if scorers[lead_id].interaction_types & product_types]
        pql_ids = _pql_leads(ruleset, candidates)
    promotions: list[Promotion] = []
    for lead_id, row in promotable.items():
        result = results[lead_id]
        is_pql = lead_id in pql_ids and not result.blocked
        if not is_pql and (result.blocked or result.score < ruleset.mql_threshold):
            continue  # the common case: decided without building the profile
        scorer = scorers[lead_id]
        details = {
            "score": result.score,
            "fit_score": result.fit_score,
            "engagement_score": result.engagement_score,
            "threshold": ruleset.mql_threshold,
            "rules": scorer.top_rules(),
            "scoring_version": ruleset.version,
        }
        target = cause_ref = reason = None
        if is_pql:
            target = Stage.PQL
            cause_ref = "pql_rule"
            reason = (
                f"PQL rule: {pql_rule.get('trial_type', 'trial_started')} and at least "
                f"{pql_rule.get('min_usage')} {pql_rule.get('usage_type', 'product_usage')} events "
                f"within {pql_rule.get('within_days')} days."
            )
            details["pql_rule"] = pql_rule
        else:
            eligible, _missing = _eligible_for_mql(ruleset, row, result)
            crossed = row["stage"] == Stage.VISITOR or (row["score"] or 0) < ruleset.mql_threshold
            if eligible and crossed:
                target = Stage.MQL
                top = details["rules"][:1]
                cause_ref = f"rule:{top[0]['rule']}" if top else "score"
                reason = (
                    f"Score {result.score} reached the MQL threshold {ruleset.mql_threshold} "
                    f"(fit {result.fit_score}, engagement {result.engagement_score}); required profile present."
                )
        if target is None:
            continue
        promotions.append(
            Promotion(
                lead_id=lead_id, to_stage=target, cause="rule", cause_ref=cause_ref, reason=reason, details=details
            )
        )
    if not promotions:
        return 0
    # One set-based move for all of them (the bulk endpoint can qualify many leads at once).
    return len(leads_promote_many(promotions=promotions, instances=caller_leads).transitions)


# --- rules and settings (marketers) -------------------------------------------------

RULE_FIELDS = (
    "name",
    "description",
    "dimension",
    "source",
    "field",
    "operator",
    "value",
    "interaction_type",
    "property",
    "points",
    "use_channel_weight",
    "max_points",
    "half_life_days",
    "blocks_mql",
    "active",
)


def rule_validate(data: dict) -> None:
    errors = rule_errors(data, interaction_types=InteractionType.values)
    if errors:
        first = next(iter(errors.items()))
        raise ValidationFailed(f"{first[0]}: {first[1]}", fields=errors)


def _bump_version(*, actor=None) -> None:
    ScoringSettings.objects.filter(pk=ScoringSettings.SINGLETON_PK).update(
        version=F("version") + 1,
        updated_at=timezone.now(),
        updated_by=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
    )


def _rule_snapshot(rule: ScoringRule) -> dict:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


@transaction.atomic
def rule_create(*, actor=None, recompute: bool = True, **data) -> ScoringRule:
    scoring_settings_get()
    full = {name: data.get(name) for name in RULE_FIELDS if name in data}
    full.setdefault("active", True)
    rule_validate(full)
    rule = ScoringRule(
        **{k: v for k, v in full.items() if v is not None or k in ("value", "max_points", "half_life_days")}
    )
    rule.created_by = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    rule.save()
    audit_record(actor=actor, action="scoring.rule_created", obj=rule, changes=_jsonable(_rule_snapshot(rule)))
    _bump_version(actor=actor)
    if recompute:
        recompute_request(actor=actor, reason=f"rule {rule.pk} created")
    return rule


@transaction.atomic
def rule_update(*, rule: ScoringRule, actor=None, recompute: bool = True, **changes) -> ScoringRule:
    locked = ScoringRule.objects.select_for_update().get(pk=rule.pk)
    before = _rule_snapshot(locked)
    merged = {**before, **{k: v for k, v in changes.items() if k in RULE_FIELDS}}
    rule_validate(merged)
    diff = {k: [before[k], merged[k]] for k in RULE_FIELDS if before[k] != merged[k]}
    if not diff:
        return locked
    for key, value in merged.items():
        setattr(locked, key, value)
    locked.save()
    audit_record(actor=actor, action="scoring.rule_updated", obj=locked, changes=_jsonable(diff))
    _bump_version(actor=actor)
    if recompute:
        recompute_request(actor=actor, reason=f"rule {locked.pk} changed")
    return locked


@transaction.atomic
def rule_delete(*, rule: ScoringRule, actor=None, recompute: bool = True) -> None:
    rule_id = rule.pk
    snapshot = _jsonable(_rule_snapshot(rule))
    # Set-based: one DELETE each, however many leads the rule scored.
    ScoreContribution.objects.filter(rule_id=rule_id).delete()
    LeadRuleTotal.objects.filter(rule_id=rule_id).delete()
    ScoringRule.objects.filter(pk=rule_id).delete()
    audit_record(
        actor=actor,
        action="scoring.rule_deleted",
        object_type="scoring.scoringrule",
        object_id=str(rule_id),
        changes=snapshot,
    )
    _bump_version(actor=actor)
    if recompute:
        recompute_request(actor=actor, reason=f"rule {rule_id} deleted")


SETTINGS_FIELDS = (
    "mql_threshold",
    "sales_ready_threshold",
    "required_profile_fields",
    "sla_hours",
    "pql_rule",
    "free_mail_domains",
    "disposable_domains",
    "role_account_prefixes",
    "competitor_domains",
    "fit_weight",
    "engagement_weight",
)
# Settings whose change alters scores (the others take effect without a recompute).
_RESCORING_SETTINGS = {
    "free_mail_domains",
    "disposable_domains",
    "role_account_prefixes",
    "competitor_domains",
    "fit_weight",
    "engagement_weight",
    "mql_threshold",
    "required_profile_fields",
}


@transaction.atomic
def scoring_settings_update(*, actor=None, recompute: bool = True, **changes) -> ScoringSettings:
    scoring_settings_get()
    row = ScoringSettings.objects.select_for_update().get(pk=ScoringSettings.SINGLETON_PK)
    diff = {}
    for key, value in changes.items():
        if key not in SETTINGS_FIELDS:
            continue
        if getattr(row, key) != value:
            diff[key] = [getattr(row, key), value]
            setattr(row, key, value)
    if not diff:
        return row
    if row.fit_weight + row.engagement_weight <= 0:
        raise ValidationFailed(
            "fit_weight and engagement_weight cannot both be 0.", fields={"fit_weight": "At least one weight > 0."}
        )
    if row.sales_ready_threshold is not None and row.sales_ready_threshold < row.mql_threshold:
        raise ValidationFailed(
            "The sales-ready threshold cannot be below the MQL threshold.",
            fields={"sales_ready_threshold": "Must be at least the MQL threshold."},
        )
    row.version = F("version") + 1
    row.updated_by = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    row.save()
    row.refresh_from_db()
    audit_record(actor=actor, action="scoring.settings_updated", obj=row, changes=_jsonable(diff))
    if recompute and set(diff) & _RESCORING_SETTINGS:
        recompute_request(actor=actor, reason="settings changed: " + ", ".join(sorted(diff)))
    return row


def _jsonable(data):
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def scoring_install_defaults(*, settings_row: ScoringSettings | None = None) -> int:
    """Install the default B2B rule set (rules whose key is missing). Returns how many were added."""
    from .defaults import DEFAULT_RULES

    existing = set(ScoringRule.objects.filter(builtin_key__isnull=False).values_list("builtin_key", flat=True))
    new = []
    for spec in DEFAULT_RULES:
        if spec["key"] in existing:
            continue
        data = {k: v for k, v in spec.items() if k != "key"}
        new.append(ScoringRule(builtin_key=spec["key"], **data))
    ScoringRule.objects.bulk_create(new)
    ScoringSettings.objects.filter(pk=ScoringSettings.SINGLETON_PK).update(
        defaults_installed_at=timezone.now(), version=F("version") + (1 if new else 0), updated_at=timezone.now()
    )
    if settings_row is not None:
        settings_row.refresh_from_db()
    return len(new)


# --- full recompute -------------------------------------------------------------------

RECOMPUTE_BATCH = 5000
_ACTIVE = (RecomputeJob.Status.PENDING, RecomputeJob.Status.RUNNING)


def recompute_request(*, actor=None, reason: str = "") -> RecomputeJob:
    """Queue a full recompute (after commit). An older unfinished job is superseded."""
    settings_row = scoring_settings_get()
    RecomputeJob.objects.filter(status__in=_ACTIVE).update(
        status=RecomputeJob.Status.SUPERSEDED, finished_at=timezone.now()
    )
    job = RecomputeJob.objects.create(
        reason=reason[:200],
        settings_version=settings_row.version,
        total=Lead.objects.count(),
        requested_by=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
    )

    def enqueue() -> None:
        from .tasks import recompute_scores

        try:
            recompute_scores.delay(job.pk)
        except Exception as exc:  # broker down: the periodic resumer picks the job up later
            logger.warning("could not queue recompute job %s: %s", job.pk, exc)

    transaction.on_commit(enqueue)
    return job


def recompute_workers_default() -> int:
    """How many workers a full recompute uses: ``SCORING_RECOMPUTE_WORKERS`` (default 2) on
    PostgreSQL; always 1 on SQLite (one writer at a time)."""
    from django.conf import settings

    if connection.vendor != "postgresql":
        return 1
    return max(1, int(getattr(settings, "SCORING_RECOMPUTE_WORKERS", 2)))


def scoring_recompute_all(
    *,
    job: RecomputeJob | None = None,
    batch_size: int = RECOMPUTE_BATCH,
    promote: bool = True,
    workers: int = 1,
    processes: bool = False,
) -> RecomputeJob:
    """Recompute every lead's score from its interactions, in batches of leads.

    Each batch is one transaction: delete the batch's contributions and totals,
    evaluate profile rules, stream the batch's interactions in (lead, id) order
    through the same engine as the incremental path, write contributions with
    COPY (PostgreSQL) or bulk inserts, and update the leads in one statement.
    The job row records the last lead done, so a restarted run continues there.

    ``workers`` > 1 splits the leads not done yet into that many disjoint id ranges
    (:class:`~scoring.models.RecomputeRange`, each resumable on its own) worked on by
    as many threads (or forked processes, ``processes=True``), each with its own database
    connection; the job's ``done`` sums them. A job that has ranges keeps them when
    resumed, whatever ``workers`` says.
    When all leads are done, visitors that now qualify are promoted
    (:func:`scores_promote_qualified`) unless ``promote`` is False.
    """
    if job is None:
        settings_row = scoring_settings_get()
        job = RecomputeJob.objects.create(
            reason="recompute_all", settings_version=settings_row.version, total=Lead.objects.count()
        )
    updated = RecomputeJob.objects.filter(pk=job.pk, status__in=_ACTIVE).update(
        status=RecomputeJob.Status.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    if not updated:
        job.refresh_from_db()
        return job
    try:
        if workers > 1 or RecomputeRange.objects.filter(job_id=job.pk).exists():
            _recompute_ranges(job_id=job.pk, workers=workers, batch_size=batch_size, processes=processes)
        else:
            while _recompute_batch(job_id=job.pk, batch_size=batch_size):
                pass
    except Exception as exc:
        RecomputeJob.objects.filter(pk=job.pk, status=RecomputeJob.Status.RUNNING).update(
            status=RecomputeJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    job.refresh_from_db()
    if promote and job.status == RecomputeJob.Status.DONE:
        scores_promote_qualified(job=job)
        job.refresh_from_db()
    return job


def _recompute_ranges(*, job_id: int, workers: int, batch_size: int, processes: bool = False) -> None:
    """Work on the job's ranges (made now if it has none), then mark the job done when all are.

    In parallel only on PostgreSQL and outside a transaction: inside one (a caller's, a
    test's) the other connections could not see its uncommitted rows, so the ranges run one
    after the other (as they do on SQLite, which has one writer at a time).
    ``processes``: one forked process per range (the scoring engine is pure Python, so
    threads share one core for it); otherwise threads (e.g. inside a Celery worker, whose
    pool processes may not fork children of their own).
    """
    ranges = _recompute_split(job_id=job_id, parts=workers)
    parallel = connection.vendor == "postgresql" and not connection.in_atomic_block  # SQLite: one writer
    if workers > 1 and len(ranges) > 1 and parallel:
        if processes:
            _run_in_processes(ranges, batch_size=batch_size, workers=workers)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recompute") as pool:
                futures = [pool.submit(_recompute_range_worker, range_id, batch_size) for range_id in ranges]
                errors = [f.exception() for f in futures]
            for error in errors:
                if error is not None:
                    raise error
    else:
        for range_id in ranges:
            while _recompute_range_batch(range_id=range_id, batch_size=batch_size):
                pass
    _recompute_finish(job_id=job_id)


def _recompute_range_worker(range_id: int, batch_size: int) -> None:
    """A whole range, in a thread or process of its own (with its own database connection)."""
    from django.db import connections

    try:
        while _recompute_range_batch(range_id=range_id, batch_size=batch_size):
            pass
    finally:
        connections.close_all()


def _run_in_processes(ranges: list[int], *, batch_size: int, workers: int) -> None:
    """Each range in a forked process (at most ``workers`` at a time); raises if one failed."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    errors = context.SimpleQueue()
    pending = list(ranges)
    running: list = []
    failed: list[int] = []
    while pending or running:
        while pending and len(running) < workers:
            _close_connections_before_fork()
            range_id = pending.pop(0)
            proc = context.Process(
                target=_recompute_range_child, args=(range_id, batch_size, errors), name=f"recompute-{range_id}"
            )
            proc.start()
            running.append((range_id, proc))
        range_id, proc = running.pop(0)
        proc.join()
        if proc.exitcode != 0:
            failed.append(range_id)
    if failed:
        reasons = []
        while not errors.empty():
            reasons.append(errors.get())
        raise RuntimeError(
            f"recompute worker(s) for range(s) {failed} failed ({'; '.join(reasons) or 'no error reported'}); "
            "the job can be resumed"
        )


def _close_connections_before_fork() -> None:
    """A forked child must not share a database connection (a socket) with its parent."""
    from django.db import connections

    for conn in connections.all():
        conn.close()
        if conn.connection is not None:  # close() keeps a connection "closed in a transaction" open
            conn.connection.close()
            conn.connection = None


def _recompute_range_child(range_id: int, batch_size: int, errors) -> None:
    from django.db import connections

    # Whatever connection the parent still held belongs to the parent: forget it unused and
    # unclosed (closing it here would end the parent's session); this process opens its own.
    for conn in connections.all():
        conn.connection = None
    try:
        _recompute_range_worker(range_id, batch_size)
    except BaseException as exc:
        errors.put(f"range {range_id}: {type(exc).__name__}: {str(exc)[:500]}")
        raise


@transaction.atomic
def _recompute_split(*, job_id: int, parts: int) -> list[int]:
    """The ids of the job's unfinished ranges; the first call cuts the leads after the job's
    ``last_lead_id`` into ``parts`` ranges of about equal size (under the job row's lock)."""
    job = RecomputeJob.objects.select_for_update().get(pk=job_id)
    if not RecomputeRange.objects.filter(job_id=job_id).exists():
        remaining = Lead.objects.filter(pk__gt=job.last_lead_id).order_by("pk")
        count = remaining.count()
        parts = max(1, min(parts, count))
        bounds = [job.last_lead_id]
        for k in range(1, parts):
            bounds.append(remaining.values_list("pk", flat=True)[k * count // parts - 1])
        RecomputeRange.objects.bulk_create(
            [
                RecomputeRange(
                    job_id=job_id,
                    after_lead_id=after,
                    until_lead_id=bounds[n + 1] if n + 1 < len(bounds) else None,
                    last_lead_id=after,
                )
                for n, after in enumerate(bounds)
            ]
        )
    return list(
        RecomputeRange.objects.filter(job_id=job_id, finished_at__isnull=True)
        .order_by("after_lead_id")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def _recompute_range_batch(*, range_id: int, batch_size: int) -> bool:
    """One batch of one range. Returns False when the range is finished (or no longer ours)."""
    # of=self: lock the range row only (another worker's batch may hold the job row briefly).
    part = RecomputeRange.objects.select_for_update(skip_locked=True, of=("self",)).filter(pk=range_id).first()
    if part is None or part.finished_at is not None:
        return False  # another worker holds it, or it is done
    status = RecomputeJob.objects.filter(pk=part.job_id).values_list("status", flat=True).first()
    if status != RecomputeJob.Status.RUNNING:
        return False  # superseded (or failed elsewhere)
    _relax_commit()
    now = timezone.now()
    ruleset = ruleset_get(scoring_settings_get())
    rows = _locked_lead_rows(after=part.last_lead_id, until=part.until_lead_id, limit=batch_size)
    if not rows:
        part.finished_at = now
        part.save(update_fields=["finished_at"])
        return False
    part.last_lead_id = _recompute_leads(rows, ruleset=ruleset, now=now)
    part.done += len(rows)
    part.save(update_fields=["last_lead_id", "done"])
    # Last statement of the batch: the job row is locked only until this commits.
    done = F("done") + Value(len(rows), output_field=PositiveIntegerField())
    RecomputeJob.objects.filter(pk=part.job_id).update(
        done=Case(When(total=0, then=done), default=Least(F("total"), done)),
        heartbeat_at=timezone.now(),
    )
    return True


@transaction.atomic
def _recompute_finish(*, job_id: int) -> None:
    """Mark the job done once all its ranges are (the job row's lock serialises the workers)."""
    job = RecomputeJob.objects.select_for_update().get(pk=job_id)
    if job.status != RecomputeJob.Status.RUNNING:
        return
    if RecomputeRange.objects.filter(job_id=job_id, finished_at__isnull=True).exists():
        return
    job.status = RecomputeJob.Status.DONE
    job.finished_at = timezone.now()
    job.done = max(job.done, job.total)
    job.save(update_fields=["status", "finished_at", "done"])


@transaction.atomic
def _recompute_batch(*, job_id: int, batch_size: int) -> bool:
    """One batch of leads. Returns False when the job is finished (or no longer ours)."""
    job = RecomputeJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
    if job is None or job.status != RecomputeJob.Status.RUNNING:
        return False  # another worker holds it, or it was superseded
    _relax_commit()
    now = timezone.now()
    settings_row = scoring_settings_get()
    ruleset = ruleset_get(settings_row)
    rows = _locked_lead_rows(after=job.last_lead_id, until=None, limit=batch_size)
    if not rows:
        job.status = RecomputeJob.Status.DONE
        job.finished_at = now
        job.done = max(job.done, job.total)
        job.save(update_fields=["status", "finished_at", "done"])
        return False
    high = _recompute_leads(rows, ruleset=ruleset, now=now)

    job.last_lead_id = high
    job.done = min(job.total, job.done + len(rows)) if job.total else job.done + len(rows)
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["last_lead_id", "done", "heartbeat_at"])
    return True


def _locked_lead_rows(*, after: int, until: int | None, limit: int) -> list[dict]:
    """The next ``limit`` leads with ``after < id <= until``, locked, as dicts of ``_LEAD_COLUMNS``."""
    if connection.vendor != "postgresql":
        leads = Lead.objects.select_for_update().filter(pk__gt=after)
        if until is not None:
            leads = leads.filter(pk__lte=until)
        return list(leads.order_by("pk").values(*_LEAD_COLUMNS)[:limit])
    where = "id > %s" + (" AND id <= %s" if until is not None else "")
    params = [after, until] if until is not None else [after]
    return _raw_locked_lead_rows(where + " ORDER BY id LIMIT %s", [*params, limit])


def _locked_leads_by_id(lead_ids: list[int]) -> list[dict]:
    """These leads, locked in id order (concurrent batches cannot deadlock), as dicts of ``_LEAD_COLUMNS``."""
    if connection.vendor != "postgresql":
        return list(Lead.objects.select_for_update().filter(pk__in=lead_ids).order_by("pk").values(*_LEAD_COLUMNS))
    return _raw_locked_lead_rows("id = ANY(%s) ORDER BY id", [list(lead_ids)])


def _raw_locked_lead_rows(condition: str, params: list) -> list[dict]:
    """PostgreSQL: one raw ``SELECT … WHERE <condition> FOR UPDATE`` giving the same values as
    ``.values(*_LEAD_COLUMNS)`` without the ORM's per-row work (only JSON columns need decoding)."""
    from django.db.models import JSONField

    fields = [Lead._meta.get_field(name) for name in _LEAD_COLUMNS]
    json_columns = [n for n, f in enumerate(fields) if isinstance(f, JSONField)]
    sql = f"SELECT {', '.join(f.column for f in fields)} FROM {Lead._meta.db_table} WHERE {condition} FOR UPDATE"  # noqa: S608 - model names, our conditions
    loads = json.loads
    rows = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for values in cursor.fetchall():
            if json_columns:
                values = list(values)
                for n in json_columns:
                    if isinstance(values[n], str):
                        values[n] = loads(values[n])
            rows.append(dict(zip(_LEAD_COLUMNS, values, strict=True)))
    return rows


def _recompute_leads(rows: list[dict], *, ruleset: Ruleset, now: datetime) -> int:
    """Rescore these leads (locked by the caller, in id order) from scratch; returns the last id.

    Delete their contributions and totals, evaluate the profile rules, stream their
    interactions in (lead, id) order through the same engine as the incremental path,
    write contributions and totals (COPY on PostgreSQL) and update the leads in one statement.
    """
    low, high = rows[0]["id"], rows[-1]["id"]
    ScoreContribution.objects.filter(lead_id__gte=low, lead_id__lte=high).delete()
    LeadRuleTotal.objects.filter(lead_id__gte=low, lead_id__lte=high).delete()

    forms = dict(Form.objects.values_list("slug", "channel_weight")) if ruleset.uses_channel_weight else {}
    scorers: dict[int, LeadScorer] = {}
    for row in rows:
        scorer = LeadScorer(lead_id=row["id"], ruleset=ruleset, totals={}, now=now, form_weights=forms)
        scorer.apply_profile(lead_profile(row, ruleset.lists))
        scorers[row["id"]] = scorer

    wanted_types = set(ruleset.by_type)
    for interaction_id, lead_id, itype, properties, occurred_at, received_at in _stream_interactions(
        ruleset, low, high, wanted_types
    ):
        scorer = scorers.get(lead_id)
        if scorer is None:
            continue
        scorer.apply_interaction(
            interaction_id=interaction_id,
            type=itype,
            properties=properties,
            occurred_at=occurred_at,
            received_at=received_at,
        )

    _copy_out(scorers, now=now)
    results = {lead_id: scorer.result() for lead_id, scorer in scorers.items()}
    _write_lead_scores(_changed_scores({row["id"]: row for row in rows}, results), now=now)
    return high


def _relax_commit() -> None:
    """A batch's commit need not wait for the WAL flush (PostgreSQL): after a crash at most the
    last batches are lost, together with the job's progress written in the same transaction,
    so the resumed job redoes exactly those."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _stream_interactions(ruleset: Ruleset, low: int, high: int, types: set[str]):
    """A batch's interactions in (lead, id) order, streamed through a server-side cursor.

    On PostgreSQL the rows are read raw (no ORM converters), the properties JSON is only
    fetched for the types whose rules look at properties, and the interaction's effective
    time comes as ``occurred_at`` (``received_at`` None).
    """
    if not types:
        return
    if connection.vendor != "postgresql":
        yield from (
            Interaction.objects.filter(lead_id__gte=low, lead_id__lte=high, type__in=sorted(types))
            .order_by("lead_id", "id")
            .values_list("id", "lead_id", "type", "properties", "occurred_at", "received_at")
            .iterator(chunk_size=10000)
        )
        return
    # What the rules read of the properties: a top-level key is fetched alone (properties -> 'key',
    # a small JSON value to decode instead of the whole document); a type whose rules follow a
    # dotted path gets its whole JSON. The engine sees the same values either way (_dig, form_slug_of).
    keys_by_type: dict[str, set[str]] = {}
    whole: set[str] = set()
    for itype, rules in ruleset.by_type.items():
        for rule in rules:
            if rule.property:
                if "." in rule.property:
                    whole.add(itype)
                else:
                    keys_by_type.setdefault(itype, set()).add(rule.property)
            if rule.use_channel_weight:
                keys_by_type.setdefault(itype, set()).update(("form_slug", "form"))
    for itype in whole:
        keys_by_type.pop(itype, None)
    keys = sorted({key for wanted in keys_by_type.values() for key in wanted})
    columns, params = [], []
    if whole:
        columns.append("CASE WHEN type IN (" + ", ".join(["%s"] * len(whole)) + ") THEN properties END")
        params += sorted(whole)
    else:
        columns.append("NULL")
    for key in keys:
        key_types = sorted(t for t, wanted in keys_by_type.items() if key in wanted)
        columns.append("CASE WHEN type IN (" + ", ".join(["%s"] * len(key_types)) + ") THEN properties -> %s END")
        params += [*key_types, key]
    # engine.effective_at in SQL (received_at when earlier than occurred_at): one timestamp per row to parse.
    sql = (
        "SELECT id, lead_id, type, CASE WHEN received_at IS NOT NULL AND received_at < occurred_at "  # noqa: S608
        f"THEN received_at ELSE occurred_at END, {', '.join(columns)} "
        f"FROM {Interaction._meta.db_table} WHERE lead_id >= %s AND lead_id <= %s "
        "AND type IN (" + ", ".join(["%s"] * len(types)) + ") ORDER BY lead_id, id"
    )
    params += [low, high, *sorted(types)]
    loads = json.loads
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            chunk = cursor.fetchmany(10000)
            if not chunk:
                return
            for row in chunk:
                interaction_id, lead_id, itype, at, properties = row[:5]
                if isinstance(properties, str):
                    properties = loads(properties)
                elif itype in keys_by_type:
                    properties = {
                        key: loads(value) if isinstance(value, str) else value
                        for key, value in zip(keys, row[5:], strict=True)
                        if value is not None
                    }
                yield interaction_id, lead_id, itype, properties, at, None


def scores_promote_qualified(*, job: RecomputeJob | None = None, batch_size: int = 1000) -> int:
    """After a full recompute: promote the visitors that now qualify for MQL.

    Kept out of the recompute batches because each promotion assigns a rep
    (round-robin, capacity); a rule change that qualifies thousands of leads
    should not hold the rescore. Candidates are selected set-based (score, not
    blocked, required profile columns filled) and locked in the same statement,
    checked again with the engine's own profile check, and moved a batch at a
    time by :func:`leads.promotion.leads_promote_many` (the same transitions,
    reps, SLA and outbox messages as ``lead_change_stage``, in a constant number
    of queries). Recycled leads are left alone (they come back by crossing the
    threshold on new activity).
    """
    from django.db.models import Q

    from leads.promotion import Promotion, leads_promote_many

    settings_row = scoring_settings_get()
    ruleset = ruleset_get(settings_row)
    lead_columns = {f.name for f in Lead._meta.concrete_fields}
    query = Q(stage=Stage.VISITOR, score__gte=ruleset.mql_threshold, mql_blocked=False)
    for name in ruleset.required_profile_fields:
        if name in lead_columns:
            query &= ~Q(**{name: ""})
    cause_ref = f"recompute:{job.pk}" if job else "recompute"
    promoted = 0
    last_id = 0
    while True:
        with transaction.atomic():
            rows = list(
                Lead.objects.select_for_update()
                .filter(query, pk__gt=last_id)
                .order_by("pk")
                .values(*_LEAD_COLUMNS)[:batch_size]
            )
            if not rows:
                break
            last_id = rows[-1]["id"]
            promotions = [
                Promotion(
                    lead_id=row["id"],
                    to_stage=Stage.MQL,
                    cause="rule",
                    cause_ref=cause_ref,
                    reason=(
                        f"Score {row['score']} reached the MQL threshold {ruleset.mql_threshold} after the "
                        f"scoring rules changed (fit {row['fit_score']}, engagement {row['engagement_score']})."
                    ),
                    details={
                        "score": row["score"],
                        "fit_score": row["fit_score"],
                        "engagement_score": row["engagement_score"],
                        "threshold": ruleset.mql_threshold,
                        "scoring_version": ruleset.version,
                    },
                    expected_from=(Stage.VISITOR,),
                )
                for row in rows
                if not profile_complete(lead_profile(row, ruleset.lists), ruleset.required_profile_fields)
            ]
            promoted += len(leads_promote_many(promotions=promotions).transitions)
            if job is not None:
                RecomputeJob.objects.filter(pk=job.pk).update(promoted=promoted)
    return promoted


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _CopyText(dict):
    """str → its COPY text-format form (backslash, tab, newline, CR escaped); reasons repeat a
    lot (one text per rule and capping), so each distinct one is escaped once per batch."""

    def __missing__(self, value: str) -> str:
        escaped = self[value] = value.translate(_COPY_ESCAPES)
        return escaped


class _FloatText(dict):
    """float → repr, for the values that repeat (rule points and their sums); zero is never
    cached, so 0.0 and -0.0 keep their own texts."""

    def __missing__(self, value: float) -> str:
        text = repr(value)
        if value:
            self[value] = text
        return text


def _copy_out(scorers: dict[int, LeadScorer], *, now: datetime) -> None:
    """Write a recompute batch's contributions and totals: COPY on PostgreSQL, bulk INSERT elsewhere.

    The COPY text is built line by line with f-strings (no csv module, no per-row lists):
    reasons are truncated and escaped once per distinct text, ``now`` is formatted once.
    """
    if connection.vendor != "postgresql":
        _write(scorers, now=now, incremental=False)
        return
    reasons = _CopyText()
    texts = _CopyText()
    floats = _FloatText()
    now_text = now.isoformat()
    null = "\\N"  # COPY's NULL marker (3.11 allows no backslash inside f-string braces)
    lines: list[str] = []
    append = lines.append
    for lead_id, scorer in scorers.items():
        for c in scorer.contributions:
            reason = c.reason
            append(
                f"{lead_id}\t{c.rule_id}\t{c.dimension}\t{c.source}\t{floats[c.points]}\t"
                f"{reasons[reason if len(reason) <= 500 else reason[:500]]}\t"
                f"{now_text if c.at is now else c.at.isoformat()}\t"
                f"{null if c.interaction_id is None else c.interaction_id}\t{texts[c.field]}\n"
            )
    contributions = "".join(lines)
    lines.clear()
    for lead_id, scorer in scorers.items():
        for t in scorer.totals.values():
            value_at = t.value_at
            append(
                f"{lead_id}\t{t.rule_id}\t{t.dimension}\t{t.matches}\t{floats[t.raw_points]}\t{floats[t.points]}\t"
                f"{t.value!r}\t{now_text if value_at is None or value_at is now else value_at.isoformat()}\t"
                f"{t.last_at.isoformat() if t.last_at else null}\n"
            )
    totals = "".join(lines)
    del lines
    with connection.cursor() as cursor:
        if contributions:
            cursor.copy_expert(
                f"COPY {ScoreContribution._meta.db_table} ({', '.join(CONTRIBUTION_COLUMNS)}) FROM STDIN",
                io.StringIO(contributions),
            )
        if totals:
            cursor.copy_expert(
                f"COPY {LeadRuleTotal._meta.db_table} ({', '.join(TOTAL_COLUMNS)}) FROM STDIN",
                io.StringIO(totals),
            )


def recompute_job_run(*, job_id: int) -> RecomputeJob:
    job = RecomputeJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No recompute job {job_id}.")
    return scoring_recompute_all(job=job, workers=recompute_workers_default())


def recompute_resume_stale(*, stale_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Jobs whose worker died (no heartbeat) or that were never queued: queue them again."""
    from .tasks import recompute_scores

    cutoff = timezone.now() - stale_after
    ids = list(
        RecomputeJob.objects.filter(status__in=_ACTIVE, created_at__lt=cutoff)
        .exclude(heartbeat_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    for job_id in ids:
        RecomputeJob.objects.filter(pk=job_id, status=RecomputeJob.Status.RUNNING).update(
            status=RecomputeJob.Status.PENDING
        )
        recompute_scores.delay(job_id)
    return ids


# --- decay ------------------------------------------------------------------------------

DECAY_BATCH = 2000


def scores_refresh_decayed(*, batch_size: int = DECAY_BATCH, now: datetime | None = None) -> int:
    """Refresh the stored scores of leads holding decaying engagement (periodic, set-based batches).

    Reads are lazy anyway (the score API decays on the fly); this keeps the
    stored columns (lists, filters, the dashboard) close to the truth. Each
    batch: the leads' totals (one query) and one UPDATE; no promotion (decay only
    lowers positive engagement).
    """
    now = now or timezone.now()
    ruleset = ruleset_get()
    decaying = [rule_id for rule_id, spec in ruleset.by_id.items() if spec.half_life_days]
    if not decaying:
        return 0
    refreshed = 0
    last_id = 0
    while True:
        lead_ids = list(
            LeadRuleTotal.objects.filter(rule_id__in=decaying, lead_id__gt=last_id)
            .exclude(value=0)
            .order_by("lead_id")
            .values_list("lead_id", flat=True)
            .distinct()[:batch_size]
        )
        if not lead_ids:
            return refreshed
        last_id = lead_ids[-1]
        with transaction.atomic():
            totals = _load_totals(lead_ids)
            rows = []
            for lead_id in lead_ids:
                scorer = LeadScorer(lead_id=lead_id, ruleset=ruleset, totals=totals.get(lead_id, {}), now=now)
                rows.append((lead_id, scorer.result()))
            _write_lead_scores(rows, now=now)
        refreshed += len(rows)

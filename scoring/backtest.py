"""Back-testing: what a candidate rule set and settings would have done on the recorded history.

The replay streams every lead (ordered by id) merged with its interactions
(ordered by lead, time) and feeds them to the scoring engine's own per-lead
arithmetic, :class:`scoring.engine.LeadScorer` (the same code the incremental
path and the full recompute use), once with the **current** rules and once with
the **candidate**. After the profile and after every interaction it asks the
engine for the score; the first moment a lead qualifies (score ≥ MQL
threshold, required profile present, no blocking negative) is when it would
have become an MQL. Leads whose first qualifying moment falls in
``[since, until)`` are that side's MQLs.

For those MQLs the recorded stage history says what really happened: offered to
sales at all (entered MQL/PQL), accepted (SAL), qualified (SQL), won (customer).
Leads that were never offered to sales have an unknown outcome, reported as such.

Limits (documented in the README): the profile is today's profile (profile
history is not recorded); only the first qualification is simulated (a
re-qualification after a rep's rejection depends on the rep); PQL rules are
not part of the replay. Memory stays flat: one lead's state at a time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Conflict, NotFound, ValidationFailed
from leads.models import Form, Interaction, InteractionType, Lead, StageTransition

from .engine import LeadScorer, effective_at, profile_complete
from .models import ScoringRule
from .models_predictive import BacktestJob
from .rules import PROFILE_COLUMNS, DomainLists, RuleSpec, lead_profile, rule_errors
from .selectors import Ruleset, ruleset_get, scoring_settings_get

logger = logging.getLogger(__name__)

CHUNK = 5000
PROGRESS_EVERY = 2000
FLIPS_SHOWN = 100
STALE_RUNNING = timedelta(minutes=30)
STALE_PENDING = timedelta(minutes=5)
SETTING_FIELDS = {
    "mql_threshold": int,
    "required_profile_fields": list,
    "fit_weight": int,
    "engagement_weight": int,
    "free_mail_domains": list,
    "disposable_domains": list,
    "role_account_prefixes": list,
    "competitor_domains": list,
}
RULE_FIELDS = (
    "name",
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


# --- building rule sets ------------------------------------------------------------------


def _rule_dict(rule: ScoringRule) -> dict:
    data = {name: getattr(rule, name) for name in RULE_FIELDS}
    data["id"] = rule.pk
    return data


def _current_settings_dict() -> dict:
    row = scoring_settings_get()
    data = {name: getattr(row, name) for name in SETTING_FIELDS}
    data["sales_ready_threshold"] = row.sales_ready_threshold
    data["pql_rule"] = row.pql_rule
    data["version"] = row.version
    return data


def _check_settings(overrides: Any) -> dict:
    if overrides in (None, ""):
        return {}
    if not isinstance(overrides, dict):
        raise ValidationFailed("settings must be an object.", fields={"settings": ["Must be an object."]})
    errors = {}
    for name, value in overrides.items():
        kind = SETTING_FIELDS.get(name)
        if kind is None:
            errors[name] = [f"Unknown setting; use one of: {', '.join(SETTING_FIELDS)}."]
        elif kind is int and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000):
            errors[name] = ["Must be a whole number between 0 and 1000."]
        elif kind is list and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            errors[name] = ["Must be a list of texts."]
    if "required_profile_fields" in overrides and "required_profile_fields" not in errors:
        from .rules import field_type

        unknown = [f for f in overrides["required_profile_fields"] if field_type(f) is None]
        if unknown:
            errors["required_profile_fields"] = [f"Unknown profile field(s): {', '.join(unknown)}."]
    if errors:
        raise ValidationFailed(
            f"settings: {next(iter(errors))}: {next(iter(errors.values()))[0]}", fields={"settings": errors}
        )
    return overrides


def _check_rule(data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValidationFailed(f"{where} must be an object.", fields={where: ["Must be an object."]})
    unknown = set(data) - set(RULE_FIELDS) - {"id"}
    if unknown:
        raise ValidationFailed(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}.", fields={where: ["Unknown fields."]}
        )
    errors = rule_errors(data, interaction_types=InteractionType.values)
    if not data.get("name"):
        errors["name"] = "A rule needs a name."
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{where}.{first}: {errors[first]}", fields={where: errors})
    return data


def candidate_rules(*, rules: Any = None, rules_diff: Any = None) -> list[dict]:
    """The candidate rule list: a full replacement (``rules``) or the current rules with a diff.

    ``rules_diff``: ``{"add": [rule, ...], "update": [{"id": n, <fields>}, ...], "remove": [id, ...]}``.
    New rules get negative ids so they never collide with stored ones.
    """
    if rules is not None and rules_diff is not None:
        raise ValidationFailed("Give either rules or rules_diff, not both.")
    if rules is not None:
        if not isinstance(rules, list) or len(rules) > 500:
            raise ValidationFailed("rules must be a list of at most 500 rules.", fields={"rules": ["Invalid."]})
        out = []
        for i, data in enumerate(rules):
            checked = dict(_check_rule(data, f"rules[{i}]"))
            checked["id"] = -(i + 1)
            out.append(checked)
        return out
    current = {rule.pk: _rule_dict(rule) for rule in ScoringRule.objects.order_by("id")}
    if rules_diff in (None, ""):
        return list(current.values())
    if not isinstance(rules_diff, dict) or set(rules_diff) - {"add", "update", "remove"}:
        raise ValidationFailed(
            "rules_diff is an object with add, update and/or remove.", fields={"rules_diff": ["Invalid."]}
        )
    for rule_id in rules_diff.get("remove") or []:
        if rule_id not in current:
            raise ValidationFailed(
                f"rules_diff.remove: there is no rule {rule_id}.", fields={"rules_diff": ["Unknown rule."]}
            )
        del current[rule_id]
    for i, change in enumerate(rules_diff.get("update") or []):
        if not isinstance(change, dict) or change.get("id") not in current:
            raise ValidationFailed(
                f"rules_diff.update[{i}]: give the id of an existing rule.", fields={"rules_diff": ["Unknown rule."]}
            )
        merged = {**current[change["id"]], **change}
        current[change["id"]] = _check_rule(merged, f"rules_diff.update[{i}]")
    added = []
    for i, data in enumerate(rules_diff.get("add") or []):
        checked = dict(_check_rule(data, f"rules_diff.add[{i}]"))
        checked["id"] = -(i + 1)
        added.append(checked)
    return [*current.values(), *added]


def build_ruleset(rules: list[dict], settings: dict, *, key: str) -> Ruleset:
    """A Ruleset (the engine's input) from plain rule dicts and settings, without touching the database."""
    specs = [RuleSpec.from_obj(r) for r in rules if r.get("active", True)]
    by_type: dict[str, list[RuleSpec]] = {}
    for spec in specs:
        if spec.source == "interaction":
            by_type.setdefault(spec.interaction_type, []).append(spec)

    lists = SimpleNamespace(
        free_mail_domains=settings.get("free_mail_domains"),
        disposable_domains=settings.get("disposable_domains"),
        role_account_prefixes=settings.get("role_account_prefixes"),
        competitor_domains=settings.get("competitor_domains"),
    )
    return Ruleset(
        key=("backtest", key),
        profile=[s for s in specs if s.source == "profile"],
        by_type=by_type,
        by_id={s.id: s for s in specs},
        lists=DomainLists.from_settings(lists),
        mql_threshold=int(settings["mql_threshold"]),
        sales_ready_threshold=settings.get("sales_ready_threshold"),
        required_profile_fields=list(settings.get("required_profile_fields") or []),
        fit_weight=int(settings["fit_weight"]),
        engagement_weight=int(settings["engagement_weight"]),
        pql_rule=dict(settings.get("pql_rule") or {}),
        version=int(settings.get("version") or 0),
        blocking_ids=frozenset(s.id for s in specs if s.blocks_mql),
    )


def current_ruleset() -> Ruleset:
    return ruleset_get()


def candidate_ruleset(*, rules: Any = None, rules_diff: Any = None, settings: Any = None) -> tuple[Ruleset, dict]:
    """(the candidate Ruleset, the plain description stored with the job)."""
    overrides = _check_settings(settings)
    rule_list = candidate_rules(rules=rules, rules_diff=rules_diff)
    merged = {**_current_settings_dict(), **overrides}
    return build_ruleset(rule_list, merged, key="candidate"), {"rules": rule_list, "settings": overrides}


# --- the replay -----------------------------------------------------------------------------


@dataclass
class Qualification:
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


def _lead_stream(lead_ids: list[int] | None) -> Iterator[tuple[int, datetime, dict]]:
    qs = Lead.objects.order_by("pk")
    if lead_ids is not None:
        qs = qs.filter(pk__in=lead_ids)
    for row in qs.values("pk", "created_at", *PROFILE_COLUMNS).iterator(chunk_size=CHUNK):
        yield row["pk"], row["created_at"], row


def _interaction_stream(
    until: datetime, lead_ids: list[int] | None, types: set[str], property_types: set[str]
) -> Iterator[tuple]:
    """(lead_id, id, type, properties, occurred_at, received_at), ordered by lead and time.

    Only types some rule looks at (the others cannot change a score); properties are
    decoded only for types whose rules test a property.
    """
    if connection.vendor == "postgresql":
        yield from _interaction_stream_pg(until, lead_ids, types, property_types)
        return
    qs = Interaction.objects.filter(occurred_at__lt=until, type__in=sorted(types))
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    yield from (
        qs.order_by("lead_id", "occurred_at", "id")
        .values_list("lead_id", "id", "type", "properties", "occurred_at", "received_at")
        .iterator(chunk_size=CHUNK)
    )


def _interaction_stream_pg(
    until: datetime, lead_ids: list[int] | None, types: set[str], property_types: set[str]
) -> Iterator[tuple]:
    # A server-side cursor and plain rows: at a million interactions the ORM's per-row
    # converters and decoding JSON nobody reads cost more than the replay itself.
    table = Interaction._meta.db_table
    where = ["occurred_at < %s", "type = ANY(%s)"]
    params: list[Any] = [until, sorted(types)]
    if lead_ids is not None:
        where.append("lead_id = ANY(%s)")
        params.append(list(lead_ids))
    sql = (
        f"SELECT lead_id, id, type, CASE WHEN type = ANY(%s) THEN properties::text END, occurred_at, received_at "  # noqa: S608 - fixed SQL, values as parameters
        f"FROM {table} WHERE {' AND '.join(where)} ORDER BY lead_id, occurred_at, id"
    )
    # Outside a transaction Django makes it a WITH HOLD cursor, so progress updates commit meanwhile.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [sorted(property_types), *params])
        while True:
            rows = cursor.fetchmany(CHUNK)
            if not rows:
                return
            for lead_id, pk, itype, raw, occurred_at, received_at in rows:
                yield lead_id, pk, itype, json.loads(raw) if raw else {}, occurred_at, received_at


def _by_lead(stream: Iterator[tuple]) -> Iterator[tuple[int, list[tuple]]]:
    current, events = None, []
    for lead_id, *event in stream:
        if lead_id != current:
            if current is not None:
                yield current, events
            current, events = lead_id, []
        events.append(tuple(event))
    if current is not None:
        yield current, events


def replay(
    rulesets: dict[str, Ruleset],
    *,
    since: datetime,
    until: datetime,
    lead_ids: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Qualification]:
    """Stream the history once and replay every side. Returns each side's qualifications.

    Sides whose rules, lists and weights are equal (e.g. a candidate that only moves the
    threshold) share one replay per lead; only the threshold and required fields differ.
    """
    form_weights = dict(Form.objects.values_list("slug", "channel_weight"))
    out = {name: Qualification() for name in rulesets}
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
    events_by_lead = _by_lead(_interaction_stream(until, lead_ids, types, property_types))
    pending = next(events_by_lead, None)
    done = 0
    for lead_id, created_at, columns in _lead_stream(lead_ids):
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


# --- outcomes and the answer ----------------------------------------------------------------


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


def _side(quals: Qualification, reached: dict[int, set[str]]) -> dict:
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


def _flip_rows(ids: set[int], side: Qualification, reached: dict[int, set[str]]) -> list[dict]:
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
            **_side(Qualification({k: cand.at[k] for k in flips_in}), reached),
            "leads": _flip_rows(flips_in, cand, reached),
        },
        "flips_out": {
            "count": len(flips_out),
            **_side(Qualification({k: cur.at[k] for k in flips_out}), reached),
            "leads": _flip_rows(flips_out, cur, reached),
        },
        "timing_changed": len(earlier),
        "notes": [
            "Profiles are today's; only the first qualification of each lead is simulated; PQL rules are not replayed.",
            "Outcomes come from the recorded history: leads never offered to sales have an unknown outcome.",
        ],
    }


# --- jobs ------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def backtest_interactions_in_scope(*, until: datetime) -> int:
    return Interaction.objects.filter(occurred_at__lt=until).count()


def backtest_create(
    *, user, rules: Any = None, rules_diff: Any = None, settings: Any = None, since: datetime, until: datetime
) -> BacktestJob:
    """Validate the candidate and store a pending job (raises ValidationFailed with a clear message)."""
    if since >= until:
        raise ValidationFailed("since must be before until.", fields={"since": ["Must be before until."]})
    _ruleset, description = candidate_ruleset(rules=rules, rules_diff=rules_diff, settings=settings)
    return BacktestJob.objects.create(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        params=_json_safe(
            {
                **description,
                "since": since,
                "until": until,
                "rules_diff": rules_diff,
                "replace_rules": rules is not None,
                "base_version": scoring_settings_get().version,
            }
        ),
        progress_total=Lead.objects.count(),
    )


def backtest_run(*, job_id: int) -> BacktestJob | None:
    """Run a pending job. Claim-then-act: a second delivery of the same job does nothing."""
    # A job "running" for far longer than any replay takes lost its worker: it may be claimed again
    # (the replay only reads, so running it again is harmless).
    stale = Q(status=BacktestJob.Status.RUNNING, started_at__lt=timezone.now() - STALE_RUNNING)
    claimed = (
        BacktestJob.objects.filter(pk=job_id)
        .filter(Q(status=BacktestJob.Status.PENDING) | stale)
        .update(status=BacktestJob.Status.RUNNING, started_at=timezone.now())
    )
    if not claimed:
        return None
    job = BacktestJob.objects.get(pk=job_id)
    params = job.params
    try:
        settings_overrides = params.get("settings") or {}
        merged = {**_current_settings_dict(), **settings_overrides}
        candidate = build_ruleset(params["rules"], merged, key=f"job-{job_id}")
        since = datetime.fromisoformat(params["since"])
        until = datetime.fromisoformat(params["until"])
        total = Lead.objects.count()
        BacktestJob.objects.filter(pk=job_id).update(progress_total=total)

        def progress(done: int) -> None:
            BacktestJob.objects.filter(pk=job_id).update(progress_done=min(done, total))

        result = backtest_compare(candidate=candidate, since=since, until=until, progress=progress)
    except Exception as exc:
        logger.exception("back-test %s failed", job_id)
        BacktestJob.objects.filter(pk=job_id).update(
            status=BacktestJob.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    BacktestJob.objects.filter(pk=job_id).update(
        status=BacktestJob.Status.DONE, result=_json_safe(result), finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


@transaction.atomic
def backtest_apply(*, job_id: int, actor) -> BacktestJob:
    """Make a finished back-test's candidate the live model, through the scoring services
    (validation, audit, one full recompute). Refused when the rules changed since the back-test."""
    from . import services

    job = BacktestJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None:
        raise NotFound("There is no such back-test.")
    if job.status != BacktestJob.Status.DONE:
        raise Conflict("Only a finished back-test can be applied.")
    if job.applied_at is not None:
        raise Conflict(f"This back-test was already applied on {job.applied_at:%Y-%m-%d %H:%M}.")
    settings_row = scoring_settings_get()
    if settings_row.version != job.params.get("base_version"):
        raise Conflict("The scoring rules or settings changed since this back-test ran; run it again first.")
    params = job.params
    if params.get("replace_rules"):
        for rule in ScoringRule.objects.order_by("id"):
            services.rule_delete(rule=rule, actor=actor, recompute=False)
        for data in params["rules"]:
            services.rule_create(actor=actor, recompute=False, **{k: v for k, v in data.items() if k != "id"})
    else:
        diff = params.get("rules_diff") or {}
        for rule_id in diff.get("remove") or []:
            services.rule_delete(rule=ScoringRule.objects.get(pk=rule_id), actor=actor, recompute=False)
        for change in diff.get("update") or []:
            fields = {k: v for k, v in change.items() if k != "id"}
            services.rule_update(rule=ScoringRule.objects.get(pk=change["id"]), actor=actor, recompute=False, **fields)
        for data in diff.get("add") or []:
            services.rule_create(actor=actor, recompute=False, **{k: v for k, v in data.items() if k != "id"})
    if params.get("settings"):
        services.scoring_settings_update(actor=actor, recompute=False, **params["settings"])
    services.recompute_request(actor=actor, reason=f"back-test {job.pk} applied")
    job.applied_at = timezone.now()
    job.applied_by = actor if getattr(actor, "is_authenticated", False) else None
    job.save(update_fields=["applied_at", "applied_by"])
    audit_record(actor=actor, action="scoring.backtest_applied", obj=job, changes={"params": params})
    return job


def backtest_jobs_to_resume() -> list[int]:
    """Jobs whose message was lost (pending for a while) or whose worker died (running far too long)."""
    now = timezone.now()
    return list(
        BacktestJob.objects.filter(
            Q(status=BacktestJob.Status.PENDING, created_at__lt=now - STALE_PENDING)
            | Q(status=BacktestJob.Status.RUNNING, started_at__lt=now - STALE_RUNNING)
        ).values_list("pk", flat=True)
    )

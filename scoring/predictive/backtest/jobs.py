"""Back-test jobs: create (validated), run (claim-then-act, with progress), apply, resume."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Conflict, NotFound, ValidationFailed
from leads.models import Interaction, Lead

from ... import services
from ...models import ScoringRule
from ...selectors import scoring_settings_get
from ..models import BacktestJob
from .candidates import build_ruleset, candidate_ruleset, current_settings_dict
from .compare import backtest_compare

logger = logging.getLogger(__name__)

STALE_RUNNING = timedelta(minutes=30)
STALE_PENDING = timedelta(minutes=5)


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
        merged = {**current_settings_dict(), **settings_overrides}
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

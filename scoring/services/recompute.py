"""The full recompute: every lead's score rebuilt from its interactions, set-based, in batches,
resumable, in parallel ranges on PostgreSQL; its result equals the incremental one (the same
engine). When done, the funnel promotes the visitors that now qualify."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Case, F, PositiveIntegerField, Q, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from leadfunnel.errors import NotFound
from leadfunnel.outbox import outbox_publish
from leadfunnel.sql import is_postgres
from leads.models import Form, Lead, Stage

from ..engine import LeadScorer
from ..models import LeadRuleTotal, RecomputeJob, RecomputeRange, ScoreContribution
from ..qualification import Qualification, qualifies_for_mql
from ..rules import lead_profile
from ..selectors import Ruleset, ruleset_get, scoring_settings_get
from ..sql import LEAD_COLUMNS, copy_scores, locked_lead_rows, locked_leads_by_id, relax_commit, stream_interactions
from .ledger import changed_scores, write_lead_scores, write_ledger

logger = logging.getLogger(__name__)

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
    # The worker is asked after commit (scoring.tasks handles the message); if the broker is down,
    # the periodic resumer queues the job later.
    outbox_publish(topic="scoring.recompute_requested", payload={"job_id": job.pk})
    return job


def recompute_workers_default() -> int:
    """How many workers a full recompute uses: ``SCORING_RECOMPUTE_WORKERS`` (default 2) on
    PostgreSQL; always 1 on SQLite (one writer at a time)."""
    if not is_postgres():
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
    When all leads are done, ``scoring.recomputed`` is published (unless ``promote`` is False):
    the funnel then promotes the visitors that now qualify (:func:`recompute_qualifications`).
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
        outbox_publish(topic="scoring.recomputed", payload={"job_id": job.pk})
        job.refresh_from_db()  # outside a transaction the promotion may have run already
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
    parallel = is_postgres() and not connection.in_atomic_block  # SQLite: one writer
    if workers > 1 and len(ranges) > 1 and parallel:
        if processes:
            _run_in_processes(ranges, batch_size=batch_size, workers=workers)
        else:
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
    try:
        while _recompute_range_batch(range_id=range_id, batch_size=batch_size):
            pass
    finally:
        connections.close_all()


def _run_in_processes(ranges: list[int], *, batch_size: int, workers: int) -> None:
    """Each range in a forked process (at most ``workers`` at a time); raises if one failed."""
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
    for conn in connections.all():
        conn.close()
        if conn.connection is not None:  # close() keeps a connection "closed in a transaction" open
            conn.connection.close()
            conn.connection = None


def _recompute_range_child(range_id: int, batch_size: int, errors) -> None:
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
    relax_commit()
    now = timezone.now()
    ruleset = ruleset_get(scoring_settings_get())
    rows = locked_lead_rows(after=part.last_lead_id, until=part.until_lead_id, limit=batch_size)
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
    relax_commit()
    now = timezone.now()
    settings_row = scoring_settings_get()
    ruleset = ruleset_get(settings_row)
    rows = locked_lead_rows(after=job.last_lead_id, until=None, limit=batch_size)
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
    for interaction_id, lead_id, itype, properties, occurred_at, received_at in stream_interactions(
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

    _write_batch(scorers, now=now)
    results = {lead_id: scorer.result() for lead_id, scorer in scorers.items()}
    write_lead_scores(changed_scores({row["id"]: row for row in rows}, results), now=now)
    return high


def scores_recompute_lead(*, lead_id: int, now: datetime | None = None) -> bool:
    """Rescore one lead from scratch, exactly as a full recompute does (the same
    :func:`_recompute_leads` over a batch of one): its contributions and totals are rebuilt from
    its profile and every interaction it has. For a lead whose history just changed under it
    (two leads merged into one). Locks the lead; answers False when there is no such lead."""
    rows = locked_leads_by_id([lead_id])
    if not rows:
        return False
    _recompute_leads(rows, ruleset=ruleset_get(scoring_settings_get()), now=now or timezone.now())
    return True


def _write_batch(scorers: dict[int, LeadScorer], *, now: datetime) -> None:
    """A recompute batch's contributions and totals: COPY on PostgreSQL, bulk inserts elsewhere."""
    if is_postgres():
        copy_scores(scorers, now=now)
    else:
        write_ledger(scorers, now=now, incremental=False)


@dataclass
class QualifiedBatch:
    qualifications: list[Qualification]
    last_id: int


def recompute_qualifications(*, job_id: int | None, after_id: int, limit: int) -> QualifiedBatch | None:
    """After a full recompute: the next ``limit`` visitors (id above ``after_id``) that now qualify
    for MQL, locked, as decisions for the funnel (None: no candidates left).

    Candidates are narrowed in SQL (score, not blocked, required profile columns filled) and decided
    by :func:`~scoring.qualification.qualifies_for_mql`. Recycled leads are left alone (they come
    back by crossing the threshold on new activity).
    """
    ruleset = ruleset_get(scoring_settings_get())
    lead_columns = {f.name for f in Lead._meta.concrete_fields}
    query = Q(stage=Stage.VISITOR, score__gte=ruleset.mql_threshold, mql_blocked=False)
    for name in ruleset.required_profile_fields:
        if name in lead_columns:
            query &= ~Q(**{name: ""})
    rows = list(
        Lead.objects.select_for_update().filter(query, pk__gt=after_id).order_by("pk").values(*LEAD_COLUMNS)[:limit]
    )
    if not rows:
        return None
    cause_ref = f"recompute:{job_id}" if job_id else "recompute"
    qualifications = []
    for row in rows:
        check = qualifies_for_mql(
            score=row["score"],
            blocked=row["mql_blocked"],
            profile=lead_profile(row, ruleset.lists),
            threshold=ruleset.mql_threshold,
            required_profile_fields=ruleset.required_profile_fields,
        )
        if not check.ok:
            continue
        qualifications.append(
            Qualification(
                lead_id=row["id"],
                to_stage=Stage.MQL,
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
        )
    return QualifiedBatch(qualifications=qualifications, last_id=rows[-1]["id"])


def recompute_job_promoted(*, job_id: int, promoted: int) -> None:
    """Record how many leads the funnel promoted after the job."""
    RecomputeJob.objects.filter(pk=job_id).update(promoted=promoted)


def recompute_job_run(*, job_id: int) -> RecomputeJob:
    job = RecomputeJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No recompute job {job_id}.")
    return scoring_recompute_all(job=job, workers=recompute_workers_default())


def recompute_jobs_stale(*, stale_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Jobs whose worker died (no heartbeat) or that were never queued, made pending again: the
    caller queues them (``scoring.tasks.recompute_resume_stale``)."""
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
    return ids

"""Celery tasks of the leads app: SLA enforcement and imports.

Thin wrappers: they take ids and call services. Import tasks are named ``import_*`` so
they are routed to the ``bulk`` queue (``CELERY_TASK_ROUTES``); the rest go to ``events``.
The periodic ones are in ``CELERY_BEAT_SCHEDULE`` (leadfunnel/settings.py).
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from leadfunnel.outbox import outbox_handler

from . import imports, services, sla
from .models import ImportJob
from .services import consent

logger = logging.getLogger(__name__)

# An import that has not advanced for this long is considered abandoned by a dead worker.
IMPORT_STALL = timedelta(minutes=10)


@shared_task(acks_late=True)
def sla_enforce() -> dict:
    return sla.sla_enforce()


@shared_task(acks_late=True)
def lost_recycle() -> int:
    """Leads lost for LOST_RECYCLE_AFTER_DAYS go back to marketing (set-based, safe to run twice)."""
    return services.leads_recycle_lost()


@shared_task(name="leads.tasks.scores_drain", acks_late=True)
def scores_drain() -> int:
    """Score the events the intake and bulk paths queued (SCORING_DEFERRED). Safe to run twice:
    batches are claimed with SKIP LOCKED and deleted in the transaction that scores them."""
    return services.leads_score_pending_all()


@shared_task(name="leads.tasks.retention_sweep", acks_late=True)
def retention_sweep() -> int:
    """Blank form payloads, IPs and user agents past RETENTION_SUBMISSION_DAYS and delete the
    files of imports finished before then (daily, beat). Answers how many of both."""
    return services.submissions_apply_retention() + services.import_files_expire()


@shared_task(name="leads.tasks.consent_requests_send", acks_late=True)
def consent_requests_send(request_ids: list[int]) -> int:
    """Send double opt-in confirmation emails (each claimed first: never twice)."""
    return sum(consent.consent_request_send(request_id=pk) for pk in request_ids)


@shared_task(name="leads.tasks.consent_requests_sweep", acks_late=True)
def consent_requests_sweep() -> int:
    """Confirmation emails whose kick was lost (broker down) or whose send failed: try again."""
    return consent_requests_send(consent.consent_requests_unsent_ids())


@shared_task(acks_late=True)
def anonymous_activity_purge() -> dict:
    """Anonymous website activity past RETENTION_ANONYMOUS_DAYS (beat, daily). Safe to run twice."""
    return services.anonymous_activity_purge()


@shared_task(acks_late=True)
def import_run_job(job_id: int) -> dict:
    job = imports.import_run(job_id=job_id)
    return {"status": job.status, "processed_rows": job.processed_rows}


@shared_task(acks_late=True)
def import_resume_stalled() -> int:
    stalled = ImportJob.objects.filter(
        status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING],
        updated_at__lt=timezone.now() - IMPORT_STALL,
    ).values_list("pk", flat=True)
    count = 0
    for job_id in stalled:
        import_run_job.delay(job_id)
        count += 1
    return count


@outbox_handler("import.requested")
def queue_import(payload: dict) -> None:
    """An upload was stored: ask a worker to import it, once this message's transaction commits."""
    job_id = payload["job_id"]

    def enqueue() -> None:
        try:
            import_run_job.apply_async(args=[job_id], retry=False)
        except Exception as exc:  # the beat sweep starts it when the broker is back
            logger.warning("broker unavailable, import %s left for the sweep: %s", job_id, exc)

    transaction.on_commit(enqueue)

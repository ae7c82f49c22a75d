"""Scoring tasks: thin wrappers that take ids and call services.

Routing (leadfunnel/settings.py): ``scoring.tasks.recompute_*`` run on the ``bulk`` queue;
the periodic ones are in ``CELERY_BEAT_SCHEDULE`` there too.
"""

import logging

from celery import shared_task
from django.db import transaction

from leadfunnel.outbox import outbox_handler

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="scoring.tasks.recompute_scores", acks_late=True)
def recompute_scores(job_id: int) -> dict:
    """Run (or resume) a full recompute job. Safe to run twice: batches claim the job row."""
    job = services.recompute_job_run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "done": job.done, "total": job.total}


@shared_task(name="scoring.tasks.recompute_decayed_scores", acks_late=True)
def recompute_decayed_scores() -> int:
    """Refresh stored scores of leads whose engagement decays."""
    return services.scores_refresh_decayed()


@shared_task(name="scoring.tasks.recompute_resume_stale", acks_late=True)
def recompute_resume_stale() -> list[int]:
    """Queue again recompute jobs whose worker died or that never reached a worker."""
    job_ids = services.recompute_jobs_stale()
    for job_id in job_ids:
        recompute_scores.delay(job_id)
    return job_ids


@outbox_handler("scoring.recompute_requested")
def queue_recompute(payload: dict) -> None:
    """A rule or setting changed: ask a worker to recompute, once this message's transaction commits."""
    job_id = payload["job_id"]

    def enqueue() -> None:
        try:
            recompute_scores.delay(job_id)
        except Exception as exc:  # broker down: the periodic resumer queues the job later
            logger.warning("could not queue recompute job %s: %s", job_id, exc)

    transaction.on_commit(enqueue)

"""Scoring tasks: thin wrappers that take ids and call services.

Routing (leadfunnel/settings.py): ``scoring.tasks.recompute_*`` run on the ``bulk`` queue;
the periodic ones are in ``CELERY_BEAT_SCHEDULE`` there too.
"""

import logging

from celery import shared_task

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

"""Background work of predictive scoring and back-testing (the ``bulk`` queue).

Names start with ``scoring.tasks.`` so the routes in settings send them to the
bulk queue with the rest of the heavy work. Tasks take ids and call services;
both claim their row first, so a redelivered message does nothing twice. The weekly
training is in ``CELERY_BEAT_SCHEDULE`` (leadfunnel/settings.py).
"""

from celery import shared_task

from .backtest import backtest_jobs_to_resume, backtest_run
from .runs import predictive_model_request, predictive_model_train


@shared_task(name="scoring.tasks.train_predictive_model", acks_late=True)
def train_predictive_model(model_id: int | None = None) -> str:
    """Train the queued model ``model_id``; without one (beat), queue a new run and train it."""
    if model_id is None:
        # A run left queued (its message lost while the broker was down) is trained now;
        # one already training elsewhere is left alone by the claim.
        row, _created = predictive_model_request()
        model_id = row.pk
    row = predictive_model_train(model_id=model_id)
    return "already claimed" if row is None else f"model v{row.version}: {row.status}"


@shared_task(name="scoring.tasks.recompute_backtest", acks_late=True)
def recompute_backtest(job_id: int) -> str:
    job = backtest_run(job_id=job_id)
    return "already claimed" if job is None else f"back-test {job.pk}: {job.status}"


@shared_task(name="scoring.tasks.recompute_backtest_resume", acks_late=True)
def recompute_backtest_resume() -> list[int]:
    """Queue again back-tests whose message was lost or whose worker died."""
    job_ids = backtest_jobs_to_resume()
    for job_id in job_ids:
        recompute_backtest.delay(job_id)
    return job_ids

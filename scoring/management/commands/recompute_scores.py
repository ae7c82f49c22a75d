"""Recompute every lead's score now, in this process (the API queues the same work in Celery)."""

import time

from django.core.management.base import BaseCommand

from scoring import services
from scoring.models import RecomputeJob


class Command(BaseCommand):
    help = "Full recompute of all leads' scores from their interactions (batched, resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=services.RECOMPUTE_BATCH)
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="Continue an unfinished job.")

    def handle(self, *args, **options):
        started = time.perf_counter()
        job = None
        if options["resume"]:
            job = RecomputeJob.objects.get(pk=options["resume"])
            if job.status == RecomputeJob.Status.RUNNING:
                RecomputeJob.objects.filter(pk=job.pk).update(status=RecomputeJob.Status.PENDING)
        job = services.scoring_recompute_all(job=job, batch_size=options["batch_size"])
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"recompute job {job.pk}: {job.status}, {job.done}/{job.total} leads, "
            f"{job.promoted} promoted, {elapsed:.1f} s"
        )

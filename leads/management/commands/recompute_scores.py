"""Recompute every lead's score now, in this process (the API queues the same work in Celery),
then move the visitors that now qualify into MQL. Lives with the funnel, which applies
scoring's qualifications."""

import time

from django.core.management.base import BaseCommand

from leads.services import leads_promote_qualified
from scoring import services
from scoring.models import RecomputeJob


class Command(BaseCommand):
    help = "Full recompute of all leads' scores from their interactions (batched, resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=services.RECOMPUTE_BATCH)
        parser.add_argument(
            "--no-promote", action="store_true", help="Only rescore; do not promote visitors that now qualify."
        )
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="Continue an unfinished job.")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Parallel workers over disjoint lead-id ranges (default: SCORING_RECOMPUTE_WORKERS, 2; 1 on SQLite).",
        )
        parser.add_argument(
            "--threads",
            action="store_true",
            help="Run the workers as threads of this process instead of forked processes.",
        )

    def handle(self, *args, **options):
        started = time.perf_counter()
        job = None
        if options["resume"]:
            job = RecomputeJob.objects.get(pk=options["resume"])
            if job.status == RecomputeJob.Status.RUNNING:
                RecomputeJob.objects.filter(pk=job.pk).update(status=RecomputeJob.Status.PENDING)
        workers = options["workers"] or services.recompute_workers_default()
        job = services.scoring_recompute_all(
            job=job, batch_size=options["batch_size"], promote=False, workers=workers, processes=not options["threads"]
        )
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"recompute job {job.pk}: {job.status}, {job.done}/{job.total} leads in {elapsed:.1f} s "
            f"({workers} worker{'s' if workers != 1 else ''})"
        )
        if not options["no_promote"] and job.status == RecomputeJob.Status.DONE:
            started = time.perf_counter()
            promoted = leads_promote_qualified(job_id=job.pk)
            self.stdout.write(f"promoted {promoted} visitors to MQL in {time.perf_counter() - started:.1f} s")

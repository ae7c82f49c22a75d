"""Retention: what a form submission said, and from where, is kept for RETENTION_SUBMISSION_DAYS.

After that the submission's raw payload, IP address and user agent are blanked; the row stays
(form, lead, time, spam flag) so per-form counts do not change. The lead's profile, built from
the submissions, is kept (it is the relationship, erased on request: ``leads.services.privacy``).

The uploaded CSV file of an import finished more than RETENTION_SUBMISSION_DAYS ago is deleted
too (the job, its counts and its error report stay); an unfinished import keeps its file.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..import_files import import_files_apply_retention
from ..models import FormSubmission

RETENTION_BATCH = 5000

# Submissions that still hold something to blank (so a run after a run finds nothing).
_HOLDING = Q(ip__isnull=False) | ~Q(user_agent="") | ~Q(payload={})


def submissions_apply_retention(*, now: datetime | None = None, batch_size: int = RETENTION_BATCH) -> int:
    """Blank the payload, IP and user agent of submissions older than the retention period.
    Returns how many were blanked. Batches of ``batch_size`` rows, each one UPDATE in its own
    transaction, so a large backlog never holds a long lock. Safe to run twice or concurrently."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.RETENTION_SUBMISSION_DAYS)
    total = 0
    while True:
        ids = list(
            FormSubmission.objects.filter(_HOLDING, received_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        total += FormSubmission.objects.filter(_HOLDING, pk__in=ids).update(payload={}, ip=None, user_agent="")
        if len(ids) < batch_size:
            return total


def import_files_expire(*, now: datetime | None = None) -> int:
    """Delete the uploaded files of imports finished before the retention period; answers how
    many were deleted. Safe to run twice."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.RETENTION_SUBMISSION_DAYS)
    return import_files_apply_retention(cutoff=cutoff)

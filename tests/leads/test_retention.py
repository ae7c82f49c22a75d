"""Retention of form submissions (payloads, IPs and user agents blanked after the period) and of
uploaded import files (deleted once their import finished that long ago)."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import FormSubmission, ImportJob, Lead
from leads.services import import_files_expire, submissions_apply_retention
from leads.tasks import retention_sweep
from tests.factories import FormFactory, LeadFactory

ROOT = Path(__file__).resolve().parents[2]


def _submission(form, lead, *, days_old: int) -> FormSubmission:
    return FormSubmission.objects.create(
        form=form,
        lead=lead,
        payload={"email": lead.email, "first_name": lead.first_name},
        ip="198.51.100.7",
        user_agent="Mozilla/5.0",
        received_at=timezone.now() - timedelta(days=days_old),
    )


@pytest.mark.django_db
def test_submissions_past_the_period_lose_payload_ip_and_user_agent_and_keep_their_row(settings):
    settings.RETENTION_SUBMISSION_DAYS = 30
    form = FormFactory()
    lead = LeadFactory(first_name="Rita")
    old = [_submission(form, lead, days_old=31) for _ in range(3)]
    recent = _submission(form, lead, days_old=29)

    assert retention_sweep() == 3  # the beat task: the same service

    for row in FormSubmission.objects.filter(pk__in=[s.pk for s in old]):
        assert (row.payload, row.ip, row.user_agent) == ({}, None, "")
        assert (row.form_id, row.lead_id) == (form.pk, lead.pk)
    recent.refresh_from_db()
    assert (recent.payload["first_name"], recent.ip, recent.user_agent) == ("Rita", "198.51.100.7", "Mozilla/5.0")
    assert FormSubmission.objects.count() == 4
    assert Lead.objects.get(pk=lead.pk).first_name == "Rita"  # the profile is not a raw payload
    assert submissions_apply_retention() == 0  # nothing left to do: safe to run twice


@pytest.mark.django_db
def test_retention_works_in_batches_of_bounded_queries(settings):
    settings.RETENTION_SUBMISSION_DAYS = 365
    form = FormFactory()
    lead = LeadFactory()
    for _ in range(5):
        _submission(form, lead, days_old=400)
    with CaptureQueriesContext(connection) as queries:
        assert submissions_apply_retention(batch_size=2) == 5
    # Three batches (2 + 2 + 1), each a select of ids and one UPDATE.
    assert len(queries) == 6


def _load(value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "leadfunnel.settings", "RETENTION_SUBMISSION_DAYS": value}
    probe = "import django; from django.conf import settings; django.setup(); print(settings.RETENTION_SUBMISSION_DAYS)"
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_retention_setting_is_parsed_strictly():
    assert _load("90").stdout.strip() == "90"
    assert _load("").stdout.strip() == "365"
    for bad in ("a year", "0", "-5", "1.5"):
        result = _load(bad)
        assert result.returncode != 0 and "RETENTION_SUBMISSION_DAYS" in result.stderr, bad


@pytest.mark.django_db
def test_the_files_of_imports_finished_before_the_period_are_deleted_and_the_jobs_stay(settings, tmp_path):
    settings.RETENTION_SUBMISSION_DAYS = 30
    settings.MEDIA_ROOT = tmp_path
    now = timezone.now()

    def job(status: str, *, finished_days_ago: int | None) -> ImportJob:
        finished = now - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
        made = ImportJob(status=status, finished_at=finished, created_count=1)
        made.file.save("people.csv", ContentFile(b"Email\nann@acme.example\n"), save=True)
        return made

    old = job("done", finished_days_ago=31)
    recent = job("done", finished_days_ago=29)
    unfinished = [job("failed", finished_days_ago=None), job("draft", finished_days_ago=None)]
    old_path = Path(old.file.path)

    assert import_files_expire() == 1
    assert not old_path.exists()
    old.refresh_from_db()
    assert (old.file.name, old.status, old.created_count) == ("", "done", 1)  # the job's record stays
    for kept in [recent, *unfinished]:
        kept.refresh_from_db()
        assert Path(kept.file.path).read_bytes() == b"Email\nann@acme.example\n"
    assert import_files_expire() == 0  # a second run finds nothing
    assert retention_sweep() == 0  # the nightly task runs it too


@pytest.mark.django_db
def test_the_nightly_sweep_deletes_expired_import_files(settings, tmp_path):
    settings.RETENTION_SUBMISSION_DAYS = 30
    settings.MEDIA_ROOT = tmp_path
    made = ImportJob(status="done", finished_at=timezone.now() - timedelta(days=40))
    made.file.save("people.csv", ContentFile(b"Email\nann@acme.example\n"), save=True)
    assert retention_sweep() == 1
    assert list(tmp_path.rglob("*.csv")) == []

"""Scoring's Celery tasks: routing to the bulk queue, the beat schedule, and what each does."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from celery.schedules import crontab

from leadfunnel.celery import app
from leads.models import Interaction, Lead
from scoring import tasks
from scoring.models import RecomputeJob
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_recompute_tasks_run_on_the_bulk_queue():
    for name in ("scoring.tasks.recompute_scores", "scoring.tasks.recompute_decayed_scores"):
        assert app.amqp.router.route({}, name)["queue"].name == "bulk"


def test_beat_refreshes_decayed_scores_and_resumes_stalled_recomputes():
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule["scoring.tasks.recompute_decayed_scores"] == crontab(minute=17)
    assert schedule["scoring.tasks.recompute_resume_stale"] == 300.0
    assert "scoring.tasks.recompute_scores" not in schedule  # a full recompute runs only when asked for


def test_the_decay_task_lowers_stored_engagement(make_rule, record):
    make_rule(name="Open", interaction_type="email_open", points=8, half_life_days=1)
    lead = LeadFactory()
    now = datetime(2026, 2, 1, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        record(lead, "email_open")
    with time_machine.travel(now + timedelta(days=3), tick=False):
        assert tasks.recompute_decayed_scores() == 1
    lead.refresh_from_db()
    assert lead.engagement_points == pytest.approx(1)


def test_the_recompute_task_finishes_the_job(make_rule):
    make_rule(name="Click", interaction_type="email_click", points=4)
    lead = LeadFactory()
    Interaction.objects.create(lead=lead, type="email_click")
    job = RecomputeJob.objects.create(total=1)
    result = tasks.recompute_scores(job.pk)
    assert result == {"job": job.pk, "status": "done", "done": 1, "total": 1}
    assert Lead.objects.get(pk=lead.pk).engagement_points == 4


def test_a_stalled_job_is_queued_again(make_rule):
    LeadFactory()
    stalled = RecomputeJob.objects.create(total=1, status="running")
    RecomputeJob.objects.filter(pk=stalled.pk).update(
        created_at=datetime.now(UTC) - timedelta(hours=1), heartbeat_at=datetime.now(UTC) - timedelta(hours=1)
    )
    assert tasks.recompute_resume_stale() == [stalled.pk]
    stalled.refresh_from_db()
    assert stalled.status == "done"  # eager in tests: the re-queued task ran to the end

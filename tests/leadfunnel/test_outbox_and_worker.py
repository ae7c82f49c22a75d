import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.utils import timezone

from leadfunnel import notifications, outbox, webhooks
from leadfunnel.celery import app
from leadfunnel.models import OutboxMessage
from leadfunnel.outbox import outbox_dispatch, outbox_handler, outbox_publish
from leadfunnel.tasks import housekeeping
from tests.conftest import wait_until

received: list[dict] = []


@outbox_handler("test.ping")
def _record(payload: dict) -> None:
    received.append(payload)


@outbox_handler("test.boom")
def _boom(payload: dict) -> None:
    raise RuntimeError("handler failed")


batches: list[list[dict]] = []


@outbox_handler("test.many", many=True)
def _record_many(payloads: list[dict]) -> None:
    if any(p.get("poison") for p in payloads):
        raise RuntimeError("one bad payload")
    batches.append(payloads)


@pytest.mark.django_db
def test_a_set_based_handler_gets_the_whole_batch_of_its_topic_in_one_call():
    batches.clear()
    outbox.outbox_publish_many(messages=[("test.many", {"n": n}) for n in range(5)])
    assert outbox_dispatch() == 5
    assert batches == [[{"n": n} for n in range(5)]]
    assert not OutboxMessage.objects.filter(topic="test.many", dispatched_at__isnull=True).exists()


@pytest.mark.django_db
def test_one_bad_message_does_not_hold_back_the_rest_of_a_set_based_batch():
    batches.clear()
    outbox.outbox_publish_many(
        messages=[("test.many", {"n": 1}), ("test.many", {"n": 2, "poison": True}), ("test.many", {"n": 3})]
    )
    assert outbox_dispatch() == 2
    # The batch call failed; the good messages then went through one by one, the bad one waits.
    assert batches == [[{"n": 1}], [{"n": 3}]]
    bad = OutboxMessage.objects.get(topic="test.many", dispatched_at__isnull=True)
    assert bad.payload["n"] == 2 and bad.attempts == 1 and "one bad payload" in bad.last_error
    assert bad.available_at > timezone.now()


@pytest.mark.django_db
def test_a_published_message_is_dispatched_once_even_if_swept_again():
    received.clear()
    message = outbox_publish(topic="test.ping", payload={"n": 1})
    assert outbox_dispatch() == 1
    assert outbox_dispatch() == 0
    assert received == [{"n": 1}]
    message.refresh_from_db()
    assert message.dispatched_at is not None


@pytest.mark.django_db
def test_a_failing_handler_is_retried_later_with_the_error_kept():
    message = outbox_publish(topic="test.boom", payload={})
    assert outbox_dispatch() == 0
    message.refresh_from_db()
    assert message.dispatched_at is None
    assert message.attempts == 1
    assert "handler failed" in message.last_error
    assert message.available_at > timezone.now()


@pytest.mark.django_db
def test_housekeeping_deletes_only_old_dispatched_messages():
    old = OutboxMessage.objects.create(topic="x", dispatched_at=timezone.now() - timedelta(days=8))
    recent = OutboxMessage.objects.create(topic="x", dispatched_at=timezone.now())
    pending = OutboxMessage.objects.create(topic="x")
    assert housekeeping() == {"outbox_deleted": 1}
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()
    assert OutboxMessage.objects.filter(pk__in=[recent.pk, pending.pk]).count() == 2


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_housekeeping_runs_through_a_real_worker_on_redis(celery_worker_factory, celery_app_on):
    old = OutboxMessage.objects.create(topic="x", dispatched_at=timezone.now() - timedelta(days=30))
    worker = celery_worker_factory()
    housekeeping.delay()
    wait_until(lambda: not OutboxMessage.objects.filter(pk=old.pk).exists(), message=worker.output())
    assert "leadfunnel.tasks.housekeeping" in worker.output()


def test_the_beat_schedule_gathers_periodic_jobs():
    app.finalize()
    assert "outbox-sweep" in app.conf.beat_schedule
    assert app.conf.task_acks_late is True
    assert app.conf.accept_content == ["json"]


def test_the_beat_schedule_is_every_periodic_job_of_every_app_by_task_name():
    schedule = {name: (entry["task"], entry["schedule"]) for name, entry in app.conf.beat_schedule.items()}
    assert schedule == {
        "outbox-sweep": ("leadfunnel.tasks.sweep_outbox", 15.0),
        "housekeeping": ("leadfunnel.tasks.housekeeping", 3600.0),
        "notifications-sweep": ("leadfunnel.tasks.notifications_sweep", 30.0),
        "webhooks-sweep": ("leadfunnel.tasks.webhooks_sweep", 15.0),
        "sla-enforce": ("leads.tasks.sla_enforce", 60.0),
        "imports-resume-stalled": ("leads.tasks.import_resume_stalled", 300.0),
        "retention-submissions": ("leads.tasks.retention_sweep", crontab(hour=3, minute=41)),
        "consent-requests-sweep": ("leads.tasks.consent_requests_sweep", 60.0),
        "lost-recycle": ("leads.tasks.lost_recycle", crontab(minute=41)),
        "tracking-retention": ("leads.tasks.anonymous_activity_purge", crontab(hour=3, minute=41)),
        "scores-drain": ("leads.tasks.scores_drain", 5.0),
        "scoring-decay-refresh": ("scoring.tasks.recompute_decayed_scores", crontab(minute=17)),
        "scoring-recompute-resume": ("scoring.tasks.recompute_resume_stale", 300.0),
        "predictive-weekly-training": ("scoring.tasks.train_predictive_model", 7 * 24 * 3600.0),
        "backtest-resume": ("scoring.tasks.recompute_backtest_resume", 300.0),
        "nurture-tick": ("nurturing.tasks.tick", 60.0),
        "nurture-segments": ("nurturing.tasks.enroll_segments", 300.0),
    }
    app.loader.import_default_modules()  # what a worker does at start: every app's tasks register
    assert {task for task, _ in schedule.values()} <= set(app.tasks)


def test_the_tasks_queued_by_name_are_registered_in_every_process():
    # A fresh process that only sets Django up (as the web process does, no autodiscovery)
    # knows them, so a kick under CELERY_TASK_ALWAYS_EAGER runs the task in-process.
    names = [outbox.DISPATCH_TASK, notifications.SEND_TASK, webhooks.DELIVER_TASK]
    script = (
        "import django, json; django.setup(); from leadfunnel.celery import app; "
        f"print(json.dumps([name in app.tasks for name in {names!r}]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "leadfunnel.settings"}
    answer = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(answer.stdout.strip().splitlines()[-1]) == [True, True, True], answer.stderr
    assert app.amqp.router.route({}, "leads.tasks.import_run_job")["queue"].name == "bulk"
    assert app.amqp.router.route({}, webhooks.DELIVER_TASK)["queue"].name == "events"


def test_a_worker_started_without_q_consumes_every_queue_tasks_are_routed_to():
    """`celery -A leadfunnel worker` as Celery's docs show it: it must take nurture and bulk work too."""
    app.finalize()
    app.loader.import_default_modules()
    default_queues = set(app.amqp.queues)  # what a worker consumes when no -Q is given
    routed = {app.amqp.router.route({}, name, args=(), kwargs={})["queue"].name for name in app.tasks}
    assert {"events", "nurture", "bulk"} <= routed
    assert routed <= default_queues
    assert app.conf.task_default_queue in default_queues
    # -Q still narrows a worker to one kind of work.
    narrowed = app.amqp.Queues(app.conf.task_queues, create_missing=True)
    narrowed.select(["nurture"])  # what `worker -Q nurture` does
    assert set(narrowed.consume_from) == {"nurture"}

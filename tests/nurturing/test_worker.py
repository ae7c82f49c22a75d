"""Nurturing with real Celery processes against Redis and the test database."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client

from leads.models import Lead
from nurturing.models import Enrollment, Message, StepExecution
from tests.conftest import wait_until
from tests.factories import FormFactory, LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAST = {"NURTURE_TICK_SECONDS": "1", "NURTURE_SEND_LEASE_SECONDS": "5"}


def _mails(*workers) -> list[str]:
    """Recipients of every email the workers' file backends wrote, one entry per email."""
    recipients = []
    for worker in workers:
        folder = Path(worker.log_path.with_suffix(".mail"))
        for path in folder.glob("*") if folder.exists() else []:
            recipients += re.findall(r"^To: (.+)$", path.read_text(errors="replace"), flags=re.M)
    return recipients


def _click_path(message: Message) -> str:
    match = re.search(r'href="https?://[^/"]+(/t/c/[^"]+)"', message.body)
    assert match, message.body
    return match.group(1)


def test_a_lead_from_a_form_is_nurtured_clicks_becomes_mql_and_lands_in_a_reps_queue(
    celery_worker_factory, broker, anon_client, sales_rep, client_for
):
    from scoring.services import rule_create, scoring_settings_update

    scoring_settings_update(recompute=False, mql_threshold=50, fit_weight=0, engagement_weight=100)
    rule_create(
        recompute=False,
        name="Clicked through to pricing",
        dimension="engagement",
        source="interaction",
        interaction_type="email_click",
        property="url",
        operator="contains",
        value="/pricing",
        points=60,
    )
    FormFactory(slug="ebook", channel_weight=0)
    sequence = make_sequence(
        enroll_on={"kind": "form_submitted", "form": "ebook"},
        steps=[
            {"kind": "email", "subject": "Your ebook, {{ lead.first_name }}", "body": "<p>Enjoy!</p>"},
            {"kind": "wait", "minutes": 0.05},
            {
                "kind": "email",
                "subject": "What does it cost?",
                "body": '<p><a href="https://leadfunnel.example/pricing">See pricing</a></p>',
            },
            {"kind": "wait", "days": 3},
            {"kind": "email", "subject": "Last call", "body": "<p>Shall we talk?</p>"},
        ],
    )
    worker = celery_worker_factory(extra_env=FAST)
    beat = celery_worker_factory(kind="beat", extra_env=FAST)

    response = anon_client.post(
        "/api/v1/forms/ebook/submit/",
        {"email": "dana@initech.example", "first_name": "Dana", "last_name": "Scully", "title": "CTO", "consent": True},
        format="json",
    )
    assert response.status_code == 201
    lead = Lead.objects.get(email="dana@initech.example")

    # Enrolled by the outbox handler in the worker, step 1 sent on a beat tick.
    first = wait_until(
        lambda: Message.objects.filter(lead=lead, position=1, sent_at__isnull=False).first(),
        timeout=30,
        message=worker.output()[-3000:] + beat.output()[-2000:],
    )
    assert first.subject == "Your ebook, Dana"
    enrollment = Enrollment.objects.get(lead=lead, sequence=sequence)
    assert enrollment.source == "form:ebook"
    # Then the wait, then step 2.
    second = wait_until(
        lambda: Message.objects.filter(lead=lead, position=3, sent_at__isnull=False).first(),
        timeout=30,
        message=worker.output()[-3000:],
    )
    assert second.sent_at - first.sent_at >= timedelta(seconds=3)
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.current_step) == ("active", 5)
    lead.refresh_from_db()
    assert lead.stage == "visitor"

    # The lead clicks the tracked link: scored, promoted to MQL, assigned, handed off.
    click = Client().get(_click_path(second))
    assert click.status_code == 302 and click["Location"] == "https://leadfunnel.example/pricing"
    lead.refresh_from_db()
    assert lead.stage == "mql" and lead.owner == sales_rep and lead.score >= 50
    enrollment = wait_until(
        lambda: Enrollment.objects.filter(pk=enrollment.pk, status="exited").first(),
        timeout=30,
        message=worker.output()[-3000:],
    )
    assert enrollment.exit_reason == "handoff"

    # The rep's queue (what /queue/ shows) and the leads API filtered the same way.
    from leads.dashboard import queue_leads

    queued = queue_leads(user=sales_rep)
    queued = queued[0] if isinstance(queued, tuple) else queued  # (leads, totals) in newer versions
    assert lead.pk in [row.pk for row in queued]
    rep = Client()
    rep.force_login(sales_rep)
    page = rep.get("/queue/")
    assert page.status_code == 200 and b"dana@initech.example" in page.content
    listed = client_for(sales_rep).get(f"/api/v1/leads/?owner={sales_rep.pk}&stage=mql").json()
    assert [row["email"] for row in listed["results"]] == ["dana@initech.example"]
    assert _mails(worker).count("dana@initech.example") == 2
    assert Message.objects.filter(lead=lead).count() == 2


def test_two_workers_duplicate_ticks_and_a_beat_on_the_same_due_batch_send_each_step_exactly_once(
    celery_worker_factory, broker
):
    """Two workers drain the same due enrolments at once, fed by beat, by three extra ticks sent at
    the same moment (a duplicate tick) and by ten direct process_due tasks: each step is sent once."""
    from nurturing import services, tasks

    sequence = make_sequence(
        steps=[
            {"kind": "email", "subject": "One", "body": "<p>One</p>"},
            {"kind": "email", "subject": "Two", "body": "<p>Two</p>"},
        ]
    )
    leads = LeadFactory.create_batch(100)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    one = celery_worker_factory(extra_env=FAST)
    two = celery_worker_factory(extra_env=FAST)

    for _ in range(3):
        tasks.tick.delay()
    for _ in range(10):
        tasks.process_due.apply_async(kwargs={"batch_size": 15})
    beat = celery_worker_factory(kind="beat", extra_env=FAST)

    wait_until(
        lambda: (
            not Enrollment.objects.filter(status="active").exists()
            and not StepExecution.objects.filter(state__in=["pending", "sending"]).exists()
        ),
        timeout=60,
        message="enrolments still active",
    )
    assert Message.objects.count() == 200
    assert Message.objects.filter(sent_at__isnull=False).count() == 200
    assert StepExecution.objects.filter(state="sent").count() == 200
    assert set(Message.objects.values_list("position", flat=True)) == {1, 2}
    recipients = _mails(one, two)
    assert len(recipients) == 200
    assert all(recipients.count(lead.email) == 2 for lead in leads)
    # Both workers took part (each one's file backend holds what it sent).
    assert _mails(one) and _mails(two), (one.output()[-1500:], two.output()[-1500:], beat.output()[-500:])

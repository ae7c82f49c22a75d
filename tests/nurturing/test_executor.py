from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from leads.models import Interaction
from nurturing import services
from nurturing.models import Enrollment, Message, StepExecution
from tests.factories import CompanyFactory, LeadFactory
from tests.nurturing.helpers import make_sequence, sent_to

pytestmark = pytest.mark.django_db


def _run(now=None) -> int:
    return services.process_due_steps(batch_size=100, now=now)


def test_an_enrolled_lead_receives_step_one_then_waits_then_step_two():
    sequence = make_sequence()
    lead = LeadFactory(first_name="Ana", company=CompanyFactory(name="Globex"))
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    assert _run() == 2  # email, then the wait step
    [email] = sent_to(lead.email)
    assert email.subject == "Welcome, Ana"
    html = email.alternatives[0][0]
    assert "Hi Ana from Globex!" in html
    assert "https://leadfunnel.example/guide" not in html  # rewritten to a tracked link
    assert "/t/c/" in html and "/t/o/" in html and "/t/u/" in html
    assert email.extra_headers["List-Unsubscribe"].startswith("<http")
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    enrollment = Enrollment.objects.get(lead=lead)
    assert enrollment.current_step == 3
    assert enrollment.next_due_at > timezone.now() + timedelta(days=1, hours=23)
    sent = Interaction.objects.get(lead=lead, type="email_sent")
    assert sent.properties["sequence_id"] == sequence.pk and sent.properties["step"] == 1

    assert _run() == 0  # nothing due yet: nothing sent twice
    assert len(mail.outbox) == 1

    assert _run(now=timezone.now() + timedelta(days=2, minutes=1)) == 1
    assert [m.subject for m in sent_to(lead.email)] == ["Welcome, Ana", "Pricing for Globex"]
    enrollment.refresh_from_db()
    assert enrollment.status == "completed"
    assert list(
        StepExecution.objects.filter(enrollment=enrollment).order_by("run").values_list("position", "state")
    ) == [
        (1, "sent"),
        (2, "done"),
        (3, "sent"),
    ]
    message = Message.objects.get(lead=lead, position=3)
    assert message.links == ["https://leadfunnel.example/pricing?src=nurture&x=1"]


def test_a_branch_on_did_x_since_enrolment_jumps_to_its_target():
    steps = [
        {"kind": "branch", "condition": {"interaction_type": "content_download"}, "goto": 3},
        {"kind": "email", "subject": "Grab the guide", "body": "<p>Guide</p>"},
        {"kind": "email", "subject": "Thanks for reading", "body": "<p>Thanks</p>"},
    ]
    sequence = make_sequence(steps=steps)
    reader, other = LeadFactory(), LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[reader.pk, other.pk])
    Interaction.objects.create(lead=reader, type="content_download", properties={"asset": "guide"})

    _run()

    assert [m.subject for m in sent_to(reader.email)] == ["Thanks for reading"]
    assert [m.subject for m in sent_to(other.email)] == ["Grab the guide"]
    taken = StepExecution.objects.get(enrollment__lead=reader, position=1)
    assert taken.detail == {"taken": True}


def test_actions_tag_the_lead_publish_a_webhook_and_change_the_stage_through_the_funnel_service(sales_rep):
    from leadfunnel.models import OutboxMessage
    from leads.models import StageTransition

    steps = [
        {"kind": "action", "action": "tag", "add": [" Nurtured "], "remove": ["COLD"]},
        {"kind": "action", "action": "webhook", "event": "welcome.done"},
        {"kind": "action", "action": "set_stage", "stage": "mql"},
    ]
    sequence = make_sequence(steps=steps, stop_on_handoff=False)
    lead = LeadFactory(tags=["cold", "vip"])
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    assert _run() == 3

    lead.refresh_from_db()
    assert lead.tags == ["nurtured", "vip"]  # stored normalised and sorted, like every writer of tags
    assert lead.stage == "mql" and lead.owner == sales_rep
    transition = StageTransition.objects.get(lead=lead, to_stage="mql")
    assert transition.cause == "sequence" and transition.cause_ref == f"sequence:{sequence.pk}"
    webhook = OutboxMessage.objects.get(topic="sequence.webhook")
    assert webhook.payload["event"] == "welcome.done" and webhook.payload["lead_id"] == lead.pk
    assert Enrollment.objects.get(lead=lead).status == "completed"


def test_an_illegal_stage_action_is_recorded_as_failed_and_the_sequence_goes_on():
    steps = [
        {"kind": "action", "action": "set_stage", "stage": "customer"},
        {"kind": "email", "subject": "Still here", "body": "<p>Hello</p>"},
    ]
    sequence = make_sequence(steps=steps)
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    failed = StepExecution.objects.get(enrollment__lead=lead, position=1)
    assert failed.state == "failed" and "cannot move" in failed.error
    lead.refresh_from_db()
    assert lead.stage == "visitor"
    assert [m.subject for m in sent_to(lead.email)] == ["Still here"]


def test_messages_wait_for_the_send_window_in_the_leads_time_zone():
    sequence = make_sequence(send_window_start="09:00", send_window_end="17:00")
    lead = LeadFactory(time_zone="Asia/Tokyo")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    # 20:00 UTC is 05:00 the next morning in Tokyo: outside the window.
    night = timezone.now().replace(hour=20, minute=0, second=0, microsecond=0)
    Enrollment.objects.update(next_due_at=night)

    assert _run(now=night) == 0

    assert mail.outbox == []
    enrollment = Enrollment.objects.get(lead=lead)
    assert enrollment.next_due_at == night + timedelta(hours=4)  # 09:00 Tokyo
    assert _run(now=night + timedelta(hours=4)) == 2
    assert len(sent_to(lead.email)) == 1


def test_the_daily_cap_holds_messages_across_sequences(settings):
    settings.NURTURE_MAX_MESSAGES_PER_DAY = 1
    one = make_sequence(name="One", steps=[{"kind": "email", "subject": "One", "body": "<p>1</p>"}])
    two = make_sequence(name="Two", steps=[{"kind": "email", "subject": "Two", "body": "<p>2</p>"}])
    lead = LeadFactory()
    services.enrollments_create(sequence=one, lead_ids=[lead.pk])
    services.enrollments_create(sequence=two, lead_ids=[lead.pk])

    _run()

    assert len(sent_to(lead.email)) == 1
    waiting = Enrollment.objects.get(lead=lead, status="active")
    assert waiting.next_due_at > timezone.now() + timedelta(hours=23)
    assert _run(now=timezone.now() + timedelta(days=1, minutes=1)) == 1
    assert len(sent_to(lead.email)) == 2


def test_unsubscribed_disqualified_and_handed_off_leads_leave_instead_of_receiving_mail():
    sequence = make_sequence()
    unsubscribed = LeadFactory(unsubscribed_at=timezone.now())
    disqualified = LeadFactory(stage="disqualified")
    handed_off = LeadFactory(stage="sal")
    Enrollment.objects.bulk_create(
        [
            Enrollment(lead=lead, sequence=sequence, current_step=1, next_due_at=timezone.now())
            for lead in (unsubscribed, disqualified, handed_off)
        ]
    )

    assert _run() == 0

    assert mail.outbox == []
    reasons = dict(Enrollment.objects.values_list("lead_id", "exit_reason"))
    assert reasons == {unsubscribed.pk: "unsubscribed", disqualified.pk: "disqualified", handed_off.pk: "handoff"}
    assert set(Enrollment.objects.values_list("status", flat=True)) == {"exited"}


class FlakyBackend:
    """An email backend that fails the first `failures` sends with the given error."""

    failures = 0
    error: Exception = ConnectionError("provider down")
    sent: list = []

    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        return True

    def close(self):
        pass

    def send_messages(self, messages):
        if FlakyBackend.failures > 0:
            FlakyBackend.failures -= 1
            raise FlakyBackend.error
        FlakyBackend.sent.extend(messages)
        return len(messages)


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = "tests.nurturing.test_executor.FlakyBackend"
    settings.NURTURE_RETRY_BASE_SECONDS = 60
    FlakyBackend.sent = []
    FlakyBackend.failures = 0
    return FlakyBackend


def test_a_transient_provider_error_is_retried_with_backoff_and_sent_once(flaky):
    flaky.failures, flaky.error = 1, ConnectionError("provider down")
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"}])
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    execution = StepExecution.objects.get(enrollment__lead=lead)
    assert execution.state == "pending" and execution.attempts == 1 and "provider down" in execution.error
    assert execution.next_attempt_at > timezone.now() + timedelta(seconds=50)
    assert services.deliver_pending() == {"sent": 0, "stale": 0}  # backoff not over yet

    StepExecution.objects.update(next_attempt_at=timezone.now())
    assert services.deliver_pending()["sent"] == 1
    assert services.deliver_pending()["sent"] == 0
    execution.refresh_from_db()
    assert execution.state == "sent" and execution.attempts == 2
    assert len(flaky.sent) == 1
    assert Interaction.objects.filter(lead=lead, type="email_sent").count() == 1


def test_a_refused_recipient_is_a_hard_bounce_that_ends_nurturing(flaky):
    import smtplib

    flaky.failures = 1
    flaky.error = smtplib.SMTPRecipientsRefused({"x@acme.example": (550, b"no such user")})
    sequence = make_sequence()
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    execution = StepExecution.objects.get(enrollment__lead=lead, position=1)
    assert execution.state == "failed" and execution.attempts == 1
    lead.refresh_from_db()
    assert lead.email_bounced_at is not None
    enrollment = Enrollment.objects.get(lead=lead)
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "bounced")
    assert Interaction.objects.filter(lead=lead, type="email_bounce").count() == 1
    assert flaky.sent == []


def test_a_crash_after_planning_leaves_pending_sends_that_the_sweeper_delivers_exactly_once(monkeypatch, settings):
    """The executor dies between committing the plan and calling the provider (worker killed)."""
    from nurturing.services import executor

    settings.NURTURE_SEND_LEASE_SECONDS = 0
    sequence = make_sequence()
    leads = LeadFactory.create_batch(3)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])

    def crash(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(executor, "deliver_executions", crash)
    with pytest.raises(SystemExit):
        executor.process_due_steps(batch_size=10)
    monkeypatch.undo()
    assert mail.outbox == []
    assert StepExecution.objects.filter(state="pending").count() == 3

    # The retried task finds nothing due (enrolments moved on); the sweeper sends what is pending.
    assert services.process_due_steps(batch_size=10) == 0
    assert services.deliver_pending()["sent"] == 3
    assert services.deliver_pending()["sent"] == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(lead.email for lead in leads)
    assert Message.objects.filter(sent_at__isnull=False).count() == 3


def test_a_task_retried_after_sending_but_before_acknowledging_sends_nothing_again(monkeypatch):
    """The worker dies after the provider took the messages and the state was recorded, before the
    broker got its ack: the broker redelivers the task, which must find nothing to send."""
    from nurturing import tasks

    sequence = make_sequence()
    leads = LeadFactory.create_batch(3)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    real = services.process_due_steps

    def run_then_die(**kwargs):
        real(**kwargs)
        raise SystemExit("killed before ack")

    monkeypatch.setattr(services, "process_due_steps", run_then_die)
    with pytest.raises(SystemExit):
        tasks.process_due.apply()
    monkeypatch.undo()
    assert len(mail.outbox) == 3

    tasks.process_due.apply()  # the redelivered task
    tasks.tick.apply()  # and a beat tick for good measure
    assert len(mail.outbox) == 3
    assert StepExecution.objects.filter(state="sent").count() == 3
    assert Message.objects.count() == 3


def test_a_stale_in_flight_send_is_failed_not_resent():
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"}])
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    from nurturing.services import executor

    executor._plan_batch(batch_size=10, now=None)
    StepExecution.objects.update(state="sending", next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert services.deliver_pending() == {"sent": 0, "stale": 1}
    execution = StepExecution.objects.get()
    assert execution.state == "failed" and "not resent" in execution.error
    assert mail.outbox == []


@pytest.mark.postgres  # SQLite splits bulk statements by its variable limit
def test_the_executor_query_count_does_not_grow_with_the_batch(django_assert_max_num_queries):
    sequence = make_sequence()

    def enrol(n):
        leads = LeadFactory.create_batch(n)
        services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])

    enrol(1)
    _run()  # warm-up: the scoring app installs its default rules on first use
    enrol(2)
    with django_assert_max_num_queries(35) as small:
        assert _run() == 4
    enrol(30)
    with django_assert_max_num_queries(35) as large:
        assert _run() == 60
    # Plan (one transaction): claim, steps, cap counts, sequences, insert executions, insert
    # messages, update enrolments. Claim sends: one lock-and-flip statement. Record: executions and
    # messages marked sent in one statement, then the leads app's bulk interaction service (lock
    # leads, insert, scoring's few set-based queries, one outbox row). Savepoints included.
    assert len(large.captured_queries) == len(small.captured_queries)


def test_sms_steps_use_the_pluggable_backend_and_skip_leads_without_a_phone(settings):
    from nurturing.channels import InMemorySMSBackend

    settings.NURTURE_SMS_BACKEND = "nurturing.channels.InMemorySMSBackend"
    InMemorySMSBackend.outbox = []
    sequence = make_sequence(steps=[{"kind": "sms", "body": "Hi {{ lead.first_name }}, see you at the booth!"}])
    with_phone, without = LeadFactory(first_name="Ole", phone="+4917012345"), LeadFactory(phone="")
    services.enrollments_create(sequence=sequence, lead_ids=[with_phone.pk, without.pk])

    assert _run() == 2

    assert [(s.to, s.body) for s in InMemorySMSBackend.outbox] == [("+4917012345", "Hi Ole, see you at the booth!")]
    assert Interaction.objects.filter(lead=with_phone, type="sms_sent").count() == 1
    states = dict(StepExecution.objects.values_list("enrollment__lead_id", "state"))
    assert states == {with_phone.pk: "sent", without.pk: "skipped"}


def test_notify_owner_emails_the_rep_without_counting_against_the_lead(sales_rep):
    sequence = make_sequence(
        steps=[{"kind": "action", "action": "notify_owner", "subject": "{{ lead.full_name }} is hot"}]
    )
    lead = LeadFactory(first_name="Kim", last_name="<b>Lee</b>", owner=sales_rep)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    [email] = mail.outbox
    assert email.to == [sales_rep.email] and email.subject == "Kim <b>Lee</b> is hot"
    html = email.alternatives[0][0]
    assert "Kim &lt;b&gt;Lee&lt;/b&gt; reached step 1" in html and "<b>Lee</b>" not in html
    assert "List-Unsubscribe" not in email.extra_headers
    assert not Interaction.objects.filter(lead=lead, type="email_sent").exists()


def test_the_assign_action_routes_through_the_assignment_rule(sales_rep, other_rep, django_capture_on_commit_callbacks):
    """A sequence's assign gives the lead a rep the way promotion and the SLA do: an SLA deadline,
    the ownership history, the round-robin advanced (the next lead goes to the other rep), the rep told."""
    from leadfunnel.models import LeadAssignment
    from leads.models import Lead, SalesRepProfile
    from leads.selectors import current_sla_hours

    SalesRepProfile.objects.create(user=sales_rep, last_assigned_at=timezone.now() - timedelta(days=2))
    SalesRepProfile.objects.create(user=other_rep, last_assigned_at=timezone.now() - timedelta(days=1))
    sequence = make_sequence(steps=[{"kind": "action", "action": "assign"}], stop_on_handoff=False)
    first, second = LeadFactory(stage="mql", first_name="Ann"), LeadFactory(stage="mql", first_name="Bob")
    services.enrollments_create(sequence=sequence, lead_ids=[first.pk, second.pk])

    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert _run(now=now) == 2

    first.refresh_from_db()
    second.refresh_from_db()
    # Round-robin advanced: the rep assigned longest ago first, then the other one.
    assert (first.owner, second.owner) == (sales_rep, other_rep)
    for lead in (first, second):
        assert lead.assigned_at is not None and lead.sla_breached_at is None
        assert lead.sla_due_at - lead.assigned_at == timedelta(hours=current_sla_hours())
    history = list(LeadAssignment.objects.order_by("at").values_list("lead_id", "to_owner_id", "cause"))
    assert history == [(first.pk, sales_rep.pk, "sequence"), (second.pk, other_rep.pk, "sequence")]
    assert LeadAssignment.objects.get(lead=first).reason.startswith(f"Sequence “{sequence.name}”")
    assert (
        SalesRepProfile.objects.get(user=other_rep).last_assigned_at
        > SalesRepProfile.objects.get(user=sales_rep).last_assigned_at
    )
    executions = StepExecution.objects.filter(enrollment__sequence=sequence).order_by("enrollment__lead_id")
    assert [e.detail["owner_id"] for e in executions] == [sales_rep.pk, other_rep.pk]
    # Each rep is told about the lead now theirs, with the deadline.
    subjects = sorted((m.to[0], m.subject) for m in mail.outbox)
    assert subjects == sorted(
        [
            (sales_rep.email, f"Lead assigned to you: {first.full_name} ({first.email})"),
            (other_rep.email, f"Lead assigned to you: {second.full_name} ({second.email})"),
        ]
    )
    assert all("Please accept or reject before" in m.body for m in mail.outbox)
    # A lead given to a chosen rep still advances that rep's turn.
    chosen = make_sequence(steps=[{"kind": "action", "action": "assign", "owner": sales_rep.pk}], stop_on_handoff=False)
    third = LeadFactory(stage="mql")
    services.enrollments_create(sequence=chosen, lead_ids=[third.pk])
    with django_capture_on_commit_callbacks(execute=True):
        _run(now=now + timedelta(minutes=1))
    assert Lead.objects.get(pk=third.pk).owner == sales_rep
    assert (
        SalesRepProfile.objects.get(user=sales_rep).last_assigned_at
        > SalesRepProfile.objects.get(user=other_rep).last_assigned_at
    )

"""Marketing needs consent and a reachable address: a sequence's message steps to a lead without
the consent CONSENT_REQUIRED_FOR_MARKETING asks for, or to a suppressed address, are skipped,
never sent, and shown as skipped in the sequence's stats and the lead's timeline."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Interaction
from leads.services.suppression import suppressed_emails, suppression_add
from nurturing import services
from nurturing.models import Message, StepExecution
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence, sent_to

pytestmark = pytest.mark.django_db

ONE_EMAIL = [{"kind": "email", "subject": "News for {{ lead.first_name }}", "body": "<p>Hello</p>"}]


def _run() -> int:
    return services.process_due_steps(batch_size=100)


def test_a_lead_without_consent_is_not_sent_the_email_and_the_skip_shows_in_stats_and_timeline(
    marketer_client, client, marketer
):
    sequence = make_sequence(steps=ONE_EMAIL)
    lead = LeadFactory(consent_status="none")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    assert _run() == 1

    assert mail.outbox == []
    assert not Message.objects.filter(lead=lead).exists()
    execution = StepExecution.objects.get(enrollment__lead=lead)
    assert (execution.state, execution.detail) == ("skipped", {"reason": "no_consent"})
    assert lead.enrollments.get().status == "completed"  # the sequence went on past the step

    stats = marketer_client.get(f"/api/v1/sequences/{sequence.pk}/stats/").json()
    assert stats["sent"] == 0 and stats["skipped"] == 1
    assert stats["skipped_by_reason"] == {"no_consent": 1}
    assert stats["steps"][0]["skipped"] == 1 and stats["steps"][0]["skipped_by_reason"] == {"no_consent": 1}

    timeline = marketer_client.get(f"/api/v1/leads/{lead.pk}/timeline/").json()["results"]
    [skip] = [item for item in timeline if item["type"] == "message_skipped"]
    assert skip["properties"]["reason"] == "no_consent"
    assert skip["properties"]["sequence_id"] == sequence.pk and skip["properties"]["step"] == 1
    assert not any(item["type"] == "email_sent" for item in timeline)

    client.force_login(marketer)
    page = client.get(f"/sequences/{sequence.pk}/").content.decode()
    assert "1 skipped (1 no marketing consent)" in page
    detail = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Message skipped" in detail


@pytest.mark.parametrize("status", ["pending", "opt_out"])
def test_pending_and_withdrawn_consent_block_marketing_even_on_legitimate_interest(settings, status):
    settings.CONSENT_REQUIRED_FOR_MARKETING = "none"
    sequence = make_sequence(steps=ONE_EMAIL)
    lead = LeadFactory(consent_status=status)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    assert sent_to(lead.email) == []
    assert StepExecution.objects.get(enrollment__lead=lead).state == "skipped"


def test_on_legitimate_interest_a_lead_without_consent_is_sent(settings):
    settings.CONSENT_REQUIRED_FOR_MARKETING = "none"
    sequence = make_sequence(steps=ONE_EMAIL)
    lead = LeadFactory(consent_status="none", first_name="Noor")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    [email] = sent_to(lead.email)
    assert email.subject == "News for Noor"
    assert StepExecution.objects.get(enrollment__lead=lead).state == "sent"
    assert not Interaction.objects.filter(lead=lead, type="message_skipped").exists()


def test_a_suppressed_address_is_skipped_even_with_consent(marketer_client):
    sequence = make_sequence(steps=ONE_EMAIL)
    kept, suppressed = LeadFactory(), LeadFactory(email="gone@acme.example")
    suppression_add(emails=["Gone@Acme.example"], reason="hard_bounce")
    services.enrollments_create(sequence=sequence, lead_ids=[kept.pk, suppressed.pk])

    _run()

    assert [m.to for m in mail.outbox] == [[kept.email]]
    states = dict(StepExecution.objects.values_list("enrollment__lead_id", "state"))
    assert states == {kept.pk: "sent", suppressed.pk: "skipped"}
    stats = marketer_client.get(f"/api/v1/sequences/{sequence.pk}/stats/").json()
    assert stats["sent"] == 1 and stats["skipped_by_reason"] == {"suppressed": 1}


def test_messages_to_the_leads_rep_are_not_marketing_and_still_go(sales_rep):
    sequence = make_sequence(
        steps=[*ONE_EMAIL, {"kind": "action", "action": "notify_owner", "subject": "{{ lead.full_name }} is hot"}]
    )
    lead = LeadFactory(first_name="Kim", last_name="Lee", owner=sales_rep, consent_status="none")
    suppression_add(emails=[lead.email], reason="complaint")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    [email] = mail.outbox
    assert email.to == [sales_rep.email] and email.subject == "Kim Lee is hot"
    states = list(StepExecution.objects.order_by("run").values_list("position", "state"))
    assert states == [(1, "skipped"), (2, "sent")]


def test_a_retried_send_is_checked_again_before_it_goes():
    """A send planned in an earlier pass (a retry, the sweeper) meets the same check: an address
    suppressed in between is not sent."""
    sequence = make_sequence(steps=ONE_EMAIL)
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    from nurturing.services import executor

    executor._plan_batch(batch_size=10, now=None)  # planned, not yet sent
    suppression_add(emails=[lead.email], reason="complaint")

    pending = list(StepExecution.objects.filter(state="pending").values_list("pk", flat=True))
    assert services.deliver_executions(execution_ids=pending) == 0
    assert mail.outbox == []
    execution = StepExecution.objects.get(enrollment__lead=lead)
    assert (execution.state, execution.detail["reason"]) == ("skipped", "suppressed")
    assert Interaction.objects.filter(lead=lead, type="message_skipped").count() == 1


def _plan_queries(n: int) -> int:
    sequence = make_sequence(steps=ONE_EMAIL, name=f"Batch of {n}")
    leads = [LeadFactory(consent_status="none") for _ in range(n)] + [LeadFactory() for _ in range(n)]
    suppression_add(emails=[leads[-1].email], reason="manual")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    from nurturing.services import executor

    with CaptureQueriesContext(connection) as queries:
        executor._plan_batch(batch_size=1000, now=None)
    assert StepExecution.objects.filter(sequence=sequence, state="skipped").count() == n + 1
    return len(queries)


def test_the_consent_and_suppression_check_is_set_based_for_the_batch():
    """Consent is read from the claimed leads and the suppression list in one query for the
    batch: planning 3 or 12 enrolments takes the same number of queries."""
    _plan_queries(1)  # warm the caches (scoring settings, rules) a first pass reads
    assert _plan_queries(3) == _plan_queries(12)


def test_a_recipient_the_provider_refuses_is_suppressed_as_a_hard_bounce(settings):
    import smtplib

    from tests.nurturing.test_executor import FlakyBackend

    settings.EMAIL_BACKEND = "tests.nurturing.test_executor.FlakyBackend"
    FlakyBackend.sent, FlakyBackend.failures = [], 1
    FlakyBackend.error = smtplib.SMTPRecipientsRefused({"gone@acme.example": (550, b"no such user")})
    sequence = make_sequence(steps=ONE_EMAIL)
    lead = LeadFactory(email="gone@acme.example")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    _run()

    assert suppressed_emails(["gone@acme.example"]) == {"gone@acme.example"}

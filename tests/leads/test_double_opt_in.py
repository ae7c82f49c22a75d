"""Double opt-in per form: the submission leaves consent pending and sends ONE confirmation email
(after commit, through the outbox and a worker) with a signed link; its page confirms on POST only,
recording the time and IP; only then do marketing messages flow."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from leadfunnel.outbox import outbox_dispatch
from leads.models import ConsentRequest, Interaction, Lead
from leads.services import suppression_add
from leads.services.consent import consent_request_send, consent_requests_unsent_ids
from leads.tasks import consent_requests_send
from nurturing import services as nurturing
from nurturing.models import StepExecution
from tests.factories import FormFactory
from tests.nurturing.helpers import make_sequence

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://[^\s\"<]+/consent/confirm/([^/\s\"<]+)/")


def _submit(client, capture, data=None):
    with capture(execute=True):
        response = client.post(
            "/api/v1/forms/newsletter/submit/", data or {"email": "Nia@Acme.example", "first_name": "Nia"}
        )
    assert response.status_code == 201
    # The outbox message is handled (as a worker would), the email is sent after that commit.
    with capture(execute=True):
        outbox_dispatch()
    return response


@pytest.fixture
def form(db):
    return FormFactory(slug="newsletter", name="Monthly newsletter", double_opt_in=True)


def _path(email) -> str:
    [token] = set(LINK.findall(email.body))
    assert token in email.alternatives[0][0]
    return f"/consent/confirm/{token}/"


def test_a_double_opt_in_submission_is_pending_and_sends_one_confirmation_email(
    anon_client, form, django_capture_on_commit_callbacks
):
    _submit(anon_client, django_capture_on_commit_callbacks)
    _submit(anon_client, django_capture_on_commit_callbacks)  # again while pending: no second email

    lead = Lead.objects.get(email="nia@acme.example")
    assert (lead.consent_status, lead.consent, lead.consent_source) == ("pending", False, "form:newsletter")
    [email] = mail.outbox
    assert email.to == ["nia@acme.example"] and email.subject == "Please confirm your subscription"
    assert "Monthly newsletter" in email.body
    [request] = ConsentRequest.objects.all()
    assert request.sent_at is not None and request.confirmed_at is None
    # Still a visitor, and scored like any submission.
    assert lead.stage == "visitor"
    assert Interaction.objects.filter(lead=lead, type="form_submit").count() == 2
    assert lead.score > 0


def test_the_email_is_sent_after_commit_not_inside_the_request(anon_client, form, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        anon_client.post("/api/v1/forms/newsletter/submit/", {"email": "nia@acme.example"})
    assert mail.outbox == [] and not ConsentRequest.objects.exists()


def test_following_the_link_asks_first_then_confirms_with_time_and_ip(
    anon_client, client, form, django_capture_on_commit_callbacks
):
    _submit(anon_client, django_capture_on_commit_callbacks)
    path = _path(mail.outbox[0])

    page = client.get(path)  # what a link scanner does
    assert page.status_code == 200
    assert "Yes, subscribe me" in page.content.decode() and "nia@acme.example" in page.content.decode()
    assert Lead.objects.get().consent_status == "pending"

    before = timezone.now()
    done = client.post(path, REMOTE_ADDR="203.0.113.9")
    assert done.status_code == 200 and "is confirmed" in done.content.decode()
    lead = Lead.objects.get()
    assert (lead.consent_status, lead.consent, lead.consent_ip) == ("opt_in", True, "203.0.113.9")
    assert lead.consent_source == "double_opt_in:form:newsletter" and lead.consent_at >= before
    request = ConsentRequest.objects.get()
    assert request.confirmed_at == lead.consent_at and request.confirmed_ip == "203.0.113.9"

    again = client.post(path, REMOTE_ADDR="198.51.100.1")  # a second click changes nothing
    assert again.status_code == 200
    assert Lead.objects.get().consent_ip == "203.0.113.9"


def test_the_lead_page_shows_the_confirmed_consent(
    anon_client, client, form, marketer, django_capture_on_commit_callbacks
):
    _submit(anon_client, django_capture_on_commit_callbacks)
    path = _path(mail.outbox[0])
    lead = Lead.objects.get()
    client.force_login(marketer)
    assert "Pending confirmation (double opt-in)" in client.get(f"/leads/{lead.pk}/").content.decode()

    client.post(path, REMOTE_ADDR="203.0.113.9")

    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Opted in" in page and "double_opt_in:form:newsletter" in page and "203.0.113.9" in page


def test_a_tampered_link_is_refused_clearly_and_changes_nothing(
    anon_client, client, form, django_capture_on_commit_callbacks
):
    _submit(anon_client, django_capture_on_commit_callbacks)
    path = _path(mail.outbox[0])
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]

    for method in (client.get, client.post):
        response = method(tampered)
        assert response.status_code == 400
        assert "This link is not valid" in response.content.decode()
    assert Lead.objects.get().consent_status == "pending"
    assert ConsentRequest.objects.get().confirmed_at is None


def test_an_expired_link_is_refused_clearly(anon_client, client, form, django_capture_on_commit_callbacks, settings):
    settings.CONSENT_CONFIRM_MAX_AGE_DAYS = 2
    _submit(anon_client, django_capture_on_commit_callbacks)
    path = _path(mail.outbox[0])

    with time_machine.travel(timezone.now() + timedelta(days=3)):
        response = client.post(path)
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    assert Lead.objects.get().consent_status == "pending"


def test_no_marketing_email_before_confirming_and_it_flows_after(
    anon_client, client, form, django_capture_on_commit_callbacks
):
    sequence = make_sequence(
        steps=[
            {"kind": "email", "subject": "Issue 1", "body": "<p>One</p>"},
            {"kind": "wait", "days": 1},
            {"kind": "email", "subject": "Issue 2", "body": "<p>Two</p>"},
        ]
    )
    _submit(anon_client, django_capture_on_commit_callbacks)
    lead = Lead.objects.get()
    nurturing.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    path = _path(mail.outbox[0])

    nurturing.process_due_steps(batch_size=10)
    assert [m.subject for m in mail.outbox] == ["Please confirm your subscription"]
    assert StepExecution.objects.get(position=1).detail == {"reason": "no_consent"}

    client.post(path)
    nurturing.process_due_steps(batch_size=10, now=timezone.now() + timedelta(days=1, minutes=1))
    assert [m.subject for m in mail.outbox] == ["Please confirm your subscription", "Issue 2"]


def test_a_form_without_double_opt_in_sends_no_confirmation(anon_client, django_capture_on_commit_callbacks):
    FormFactory(slug="newsletter", double_opt_in=False)
    _submit(anon_client, django_capture_on_commit_callbacks, {"email": "nia@acme.example", "consent": "true"})
    assert mail.outbox == [] and not ConsentRequest.objects.exists()
    assert Lead.objects.get().consent_status == "opt_in"


def test_double_opt_in_is_set_through_the_forms_api_and_the_forms_page(marketer_client, client, marketer):
    created = marketer_client.post(
        "/api/v1/forms/", {"slug": "doi", "name": "DOI", "double_opt_in": True}, format="json"
    ).json()
    assert created["double_opt_in"] is True
    client.force_login(marketer)
    response = client.post(
        "/forms/new/",
        {
            "name": "Page form",
            "slug": "page-form",
            "kind": "contact",
            "channel": "inbound",
            "channel_weight": 0,
            "double_opt_in": "on",
            "success_message": "Thanks",
        },
    )
    assert response.status_code == 302
    from leads.models import Form

    assert Form.objects.get(slug="page-form").double_opt_in is True
    assert 'id="double-opt-in"' in client.get("/forms/page-form/").content.decode()


def test_a_suppressed_address_gets_no_confirmation_email_and_is_not_tried_again(
    anon_client, form, django_capture_on_commit_callbacks
):
    # Listed in another letter case (an earlier complaint): the check is on the normalised address.
    suppression_add(emails=["NIA@acme.example"], reason="complaint", actor=None)
    other = {"email": "zoe@acme.example", "first_name": "Zoe"}
    _submit(anon_client, django_capture_on_commit_callbacks)
    _submit(anon_client, django_capture_on_commit_callbacks, data=other)

    # Zoe gets hers; Nia gets nothing, and her request says why.
    [email] = mail.outbox
    assert email.to == ["zoe@acme.example"]
    nia = ConsentRequest.objects.get(lead__email="nia@acme.example")
    assert nia.sent_at is None and nia.confirmed_at is None
    assert nia.last_error == "Not sent: the address is on the suppression list."
    assert Lead.objects.get(email="nia@acme.example").consent_status == "pending"
    # Neither the sweep nor a direct retry picks it again.
    assert consent_requests_unsent_ids() == []
    assert consent_requests_send(consent_requests_unsent_ids()) == 0
    assert consent_request_send(request_id=nia.pk) is False
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert consent_requests_unsent_ids() == []
    assert len(mail.outbox) == 1


def test_an_address_suppressed_after_the_request_was_opened_is_checked_at_send_time(
    anon_client, form, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the worker is down: nothing sent yet
        anon_client.post("/api/v1/forms/newsletter/submit/", {"email": "nia@acme.example"})
    with django_capture_on_commit_callbacks(execute=False):
        outbox_dispatch()
    [request_id] = consent_requests_unsent_ids()
    suppression_add(emails=["nia@acme.example"], reason="unsubscribed", actor=None)

    assert consent_requests_send([request_id]) == 0  # the sweep's task
    assert mail.outbox == []
    request = ConsentRequest.objects.get(pk=request_id)
    assert request.sent_at is None and "suppression list" in request.last_error
    assert consent_requests_unsent_ids() == []

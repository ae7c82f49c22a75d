"""The suppression list: what puts an address on it, and every marketing send obeying it."""

import io
import json
import smtplib

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadfunnel.models import AuditEvent
from leads.models import Lead, Suppression
from leads.services import suppressed_emails, suppression_add, suppression_hash, suppression_remove
from nurturing import services as nurturing
from nurturing.models import Message, StepExecution
from nurturing.tracking import tracking_token
from tests.factories import FormFactory, LeadFactory
from tests.nurturing.helpers import make_sequence, sent_to

pytestmark = pytest.mark.django_db

ONE_EMAIL = [{"kind": "email", "subject": "Hello", "body": "<p>Hello {{ lead.first_name }}</p>"}]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _send_to(lead) -> int:
    """Enrol the lead in a one-email sequence and run the due steps: how many emails went out."""
    sequence = make_sequence(name=f"Seq {lead.pk}", steps=ONE_EMAIL)
    nurturing.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    before = len(mail.outbox)
    nurturing.process_due_steps(batch_size=100)
    return len(mail.outbox) - before


# --- the interface ---------------------------------------------------------------------------


def test_the_hash_is_keyed_on_the_normalised_address_and_nothing_is_stored_in_clear(settings):
    digest = suppression_hash("  Jane.Doe@Example.com ")
    assert digest == suppression_hash("jane.doe@example.com") and len(digest) == 64
    assert digest != suppression_hash("jane.doe@example.org")
    settings.SECRET_KEY = "another-secret-key-another-secret-key-0123456789"
    assert suppression_hash("jane.doe@example.com") != digest  # keyed: not a plain SHA-256

    assert suppression_add(emails=["Jane.Doe@Example.com", "jane.doe@example.com "], reason="manual") == 1
    row = Suppression.objects.get()
    assert row.hint == "j***@example.com" and row.reason == "manual"
    assert "jane" not in json.dumps(list(Suppression.objects.values())[0], default=str).lower().replace("j***", "")


def test_adding_is_idempotent_and_answers_how_many_were_new():
    assert suppression_add(emails=["a@x.example", "b@x.example"], reason="unsubscribed") == 2
    assert suppression_add(emails=["A@X.example", "c@x.example"], reason="complaint") == 1
    assert suppression_add(emails=[], reason="manual") == 0
    assert Suppression.objects.get(email_hash=suppression_hash("a@x.example")).reason == "unsubscribed"
    assert Suppression.objects.count() == 3


def test_an_unknown_reason_is_refused_and_nothing_stored():
    from leadfunnel.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        suppression_add(emails=["a@x.example"], reason="bored")
    assert not Suppression.objects.exists()


def test_erasure_keeps_the_hash_and_drops_the_hint():
    suppression_add(emails=["kim@x.example"], reason="unsubscribed")
    assert suppression_add(emails=["kim@x.example"], reason="erased") == 0
    row = Suppression.objects.get()
    assert (row.reason, row.hint) == ("unsubscribed", "")


def test_suppressed_emails_answers_the_given_spelling_in_one_query():
    suppression_add(emails=["a@x.example"], reason="manual")
    with CaptureQueriesContext(connection) as queries:
        found = suppressed_emails(["A@X.example", "b@x.example", "", "a@x.example"])
    assert found == {"A@X.example", "a@x.example"}
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert suppressed_emails([]) == set()
    assert len(queries) == 0


def test_removal_is_audited_and_lets_email_through_again(admin_user):
    suppression_add(emails=["back@x.example"], reason="manual", actor=admin_user)
    row = Suppression.objects.get()
    suppression_remove(suppression_id=row.pk, actor=admin_user)
    assert not Suppression.objects.exists()
    assert suppressed_emails(["back@x.example"]) == set()
    actions = list(AuditEvent.objects.order_by("at", "id").values_list("action", "changes"))
    assert [a for a, _ in actions] == ["suppression.added", "suppression.removed"]
    assert "back@" not in json.dumps([c for _, c in actions])


# --- every send obeys it ------------------------------------------------------------------------


def test_a_suppressed_address_gets_no_nurture_email_even_when_the_lead_row_says_subscribed():
    lead = LeadFactory(email="quiet@acme.example", unsubscribed_at=None, email_bounced_at=None, consent=True)
    suppression_add(emails=["QUIET@acme.example"], reason="complaint")
    assert _send_to(lead) == 0
    assert sent_to("quiet@acme.example") == []
    execution = StepExecution.objects.get(enrollment__lead=lead)
    assert execution.state == "skipped"
    other = LeadFactory(email="loud@acme.example")
    assert _send_to(other) == 1  # the list blocks only its addresses


def test_a_delivery_pass_skips_exactly_the_suppressed_addresses_of_its_batch():
    leads = [LeadFactory(email=f"p{n}@acme.example") for n in range(5)]
    suppression_add(emails=["p0@acme.example", "p3@acme.example"], reason="manual")
    sequence = make_sequence(steps=ONE_EMAIL)
    nurturing.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    nurturing.process_due_steps(batch_size=100)
    assert sorted(e.to[0] for e in mail.outbox) == ["p1@acme.example", "p2@acme.example", "p4@acme.example"]


def test_rep_notifications_are_not_affected(marketer_client, sales_rep, django_capture_on_commit_callbacks):
    from leadfunnel.outbox import outbox_dispatch

    suppression_add(emails=[sales_rep.email], reason="manual")
    lead = LeadFactory(title="CTO")
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(f"/api/v1/leads/{lead.pk}/mark-mql/", {"reason": "Hot"}, format="json")
        outbox_dispatch()
    assert [m.to for m in mail.outbox] == [[sales_rep.email]]


# --- what puts an address on it -------------------------------------------------------------------


def test_the_unsubscribe_link_suppresses_the_address_even_when_the_row_already_said_so(client):
    sequence = make_sequence()
    lead = LeadFactory(email="bye@acme.example")
    nurturing.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    nurturing.process_due_steps(batch_size=10)
    message = Message.objects.get(lead=lead)
    path = f"/t/u/{tracking_token(message.token, 'u')}/"
    assert client.post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Suppression.objects.get(email_hash=suppression_hash("bye@acme.example")).reason == "unsubscribed"
    # An admin took it off the list; the person clicks again: it is back on, though the row
    # said unsubscribed all along.
    Suppression.objects.all().delete()
    assert client.post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert suppressed_emails(["bye@acme.example"]) == {"bye@acme.example"}


def test_an_unsubscribe_or_bounce_event_from_an_integration_suppresses(marketer_client):
    a = LeadFactory(email="u@acme.example")
    LeadFactory(email="b@acme.example")
    response = marketer_client.post("/api/v1/interactions/", {"lead": a.pk, "type": "unsubscribe"}, format="json")
    assert response.status_code == 201
    response = marketer_client.post(
        "/api/v1/interactions/bulk/",
        [{"email": "b@acme.example", "type": "email_bounce"}, {"lead": a.pk, "type": "page_view"}],
        format="json",
    )
    assert response.json()["accepted"] == 2
    assert dict(Suppression.objects.values_list("email_hash", "reason")) == {
        suppression_hash("u@acme.example"): "unsubscribed",
        suppression_hash("b@acme.example"): "hard_bounce",
    }


def test_an_smtp_refusal_suppresses_the_address_as_a_hard_bounce(settings):
    from tests.nurturing.test_executor import FlakyBackend

    settings.EMAIL_BACKEND = "tests.nurturing.test_executor.FlakyBackend"
    FlakyBackend.sent, FlakyBackend.failures = [], 1
    FlakyBackend.error = smtplib.SMTPRecipientsRefused({"gone@acme.example": (550, b"no such user")})
    lead = LeadFactory(email="gone@acme.example")
    sequence = make_sequence(steps=ONE_EMAIL)
    nurturing.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    nurturing.process_due_steps(batch_size=10)
    assert Suppression.objects.get(email_hash=suppression_hash("gone@acme.example")).reason == "hard_bounce"
    # The row is cleared by hand (or re-imported): still no email.
    Lead.objects.filter(pk=lead.pk).update(email_bounced_at=None)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert _send_to(Lead.objects.get(pk=lead.pk)) == 0


# --- it survives erasure and re-entry --------------------------------------------------------------


def test_an_erased_person_coming_back_by_csv_or_form_is_never_emailed(
    client, marketer_client, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="Phoenix@Acme.example".lower(), first_name="Phoenix")
    with django_capture_on_commit_callbacks(execute=True):
        assert marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 200

    # Back through a CSV import …
    upload = io.BytesIO(b"Email,First\nPHOENIX@acme.example,Phoenix\n")
    upload.name = "again.csv"
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            "/api/v1/imports/",
            {"file": upload, "mapping": json.dumps({"email": "Email", "first_name": "First"})},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    again = Lead.objects.get(email="phoenix@acme.example")
    assert again.pk != lead.pk and again.unsubscribed_at is None and again.erased_at is None
    assert _send_to(again) == 0

    # … and through a form, asking for email this time.
    form = FormFactory(slug="newsletter")
    response = client.post(
        "/api/v1/forms/newsletter/submit/", {"email": "phoenix@ACME.example", "consent": True}, format="json"
    )
    assert response.status_code == 201
    again.refresh_from_db()
    assert again.consent is True
    assert _send_to(again) == 0
    assert sent_to("phoenix@acme.example") == []
    assert form.submissions.filter(lead=again).exists()
    assert not StepExecution.objects.filter(enrollment__lead=again, state="sent").exists()


def test_a_suppressed_address_created_again_through_the_api_is_not_emailed(marketer_client):
    suppression_add(emails=["api-made@acme.example"], reason="unsubscribed")
    response = marketer_client.post(
        "/api/v1/leads/", {"email": "API-Made@acme.example", "source": "crm", "consent": True}, format="json"
    )
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(pk=response.json()["id"])
    assert lead.unsubscribed_at is None
    assert _send_to(lead) == 0


# --- API and page --------------------------------------------------------------------------------


def test_admins_list_add_and_remove_through_the_api(admin_client_api, admin_user):
    suppression_add(emails=["old@x.example"], reason="hard_bounce")
    response = admin_client_api.post("/api/v1/suppressions/", {"email": "New@X.example"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["address"], body["reason"], body["created_by"]) == ("n***@x.example", "manual", admin_user.username)
    again = admin_client_api.post("/api/v1/suppressions/", {"email": "new@x.example"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    listing = admin_client_api.get("/api/v1/suppressions/").json()
    assert listing["count"] == 2
    assert [r["address"] for r in listing["results"]] == ["n***@x.example", "o***@x.example"]

    assert admin_client_api.delete(f"/api/v1/suppressions/{body['id']}/").status_code == 204
    assert admin_client_api.delete(f"/api/v1/suppressions/{body['id']}/").status_code == 404
    assert suppressed_emails(["new@x.example", "old@x.example"]) == {"old@x.example"}


def test_a_bad_address_is_a_400_naming_the_field(admin_client_api):
    response = admin_client_api.post("/api/v1/suppressions/", {"email": "not-an-address"}, format="json")
    assert response.status_code == 400 and "email" in json.dumps(response.json())
    response = admin_client_api.post("/api/v1/suppressions/", {"email": "a@x.example", "reason": "x"}, format="json")
    assert response.status_code == 400 and "reason" in json.dumps(response.json())
    assert not Suppression.objects.exists()


def test_the_suppression_api_is_for_admins_only(marketer_client, sales_client, anon_client):
    suppression_add(emails=["x@x.example"], reason="manual")
    row = Suppression.objects.get()
    for api in (marketer_client, sales_client):
        assert api.get("/api/v1/suppressions/").status_code == 403
        assert api.post("/api/v1/suppressions/", {"email": "y@x.example"}, format="json").status_code == 403
        assert api.delete(f"/api/v1/suppressions/{row.pk}/").status_code == 403
    assert anon_client.get("/api/v1/suppressions/").status_code in (401, 403)
    assert anon_client.delete(f"/api/v1/suppressions/{row.pk}/").status_code in (401, 403)
    assert list(Suppression.objects.values_list("pk", flat=True)) == [row.pk]


def test_the_data_migration_lists_leads_already_unsubscribed_or_bounced():
    from importlib import import_module

    from django.apps import apps
    from django.utils import timezone

    migration = import_module("leads.migrations.0008_suppress_unsubscribed_and_bounced")
    LeadFactory(email="was-unsub@acme.example", unsubscribed_at=timezone.now())
    LeadFactory(email="was-bounced@acme.example", email_bounced_at=timezone.now())
    LeadFactory(email="fine@acme.example")
    suppression_add(emails=["kept@acme.example"], reason="manual")

    migration.forwards(apps, None)
    migration.forwards(apps, None)  # a second run adds nothing

    emails = ["was-unsub@acme.example", "was-bounced@acme.example", "fine@acme.example", "kept@acme.example"]
    assert suppressed_emails(emails) == {"was-unsub@acme.example", "was-bounced@acme.example", "kept@acme.example"}
    assert Suppression.objects.get(email_hash=suppression_hash("was-bounced@acme.example")).reason == "hard_bounce"
    migration.backwards(apps, None)
    assert suppressed_emails(emails) == {"kept@acme.example"}

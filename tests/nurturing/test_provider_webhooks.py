"""Email through django-anymail, and the provider's tracking webhooks back in: real Mailgun (signed
JSON) and Postmark (basic auth) payloads posted to anymail's own views become interactions on the
right message and lead, change the score, and feed the suppression list; once per event id; a bad
signature is refused and records nothing."""

import base64
import hashlib
import hmac
import json
import time
from unittest import mock

import pytest
from django.core import mail

from leads.models import Interaction, Lead
from leads.services.suppression import suppressed_emails
from nurturing import services
from nurturing.models import Enrollment, Message, ProviderEvent
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = pytest.mark.django_db

SIGNING_KEY = "mailgun-signing-key-for-tests"
WEBHOOK_SECRET = "esp:hook-secret"
MAILGUN_ID = "20261208041500.1.5C1A3F0B2D@mg.leadfunnel.example"


class _MailgunAPI:
    """Mailgun's send API as the backend sees it (the HTTP call is the only thing replaced)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, session, method, url, **kwargs):
        self.calls.append({"method": method, "url": url, **kwargs})
        response = mock.Mock(status_code=200, headers={}, encoding="utf-8", reason="OK", url=url)
        body = {"id": f"<{MAILGUN_ID}>", "message": "Queued. Thank you."}
        response.text = json.dumps(body)
        response.content = response.text.encode()
        response.json.return_value = body
        return response


@pytest.fixture
def mailgun(settings):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_SENDER_DOMAIN": "mg.leadfunnel.example",
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
    }
    api = _MailgunAPI()
    with mock.patch("requests.Session.request", autospec=True, side_effect=api):
        yield api


@pytest.fixture
def scoring_rules(make_rule):
    make_rule(name="Clicked an email", interaction_type="email_click", points=10)
    make_rule(name="Email bounced", dimension="fit", interaction_type="email_bounce", points=-20)
    make_rule(name="Complained", dimension="fit", interaction_type="email_complaint", points=-30)


@pytest.fixture
def sent(mailgun):
    """A nurture email sent through the Mailgun backend: its Message row and lead."""
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hello", "body": "<p>Hi</p>"}])
    lead = LeadFactory(email="ria@acme.example")
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    services.process_due_steps(batch_size=10)
    assert len(mailgun.calls) == 1 and "mg.leadfunnel.example/messages" in mailgun.calls[0]["url"]
    return Message.objects.get(lead=lead)


def _mailgun_post(client, event_data: dict, *, key: str = SIGNING_KEY, token: str | None = None):
    timestamp = str(int(time.time()))
    token = token or hashlib.sha256(json.dumps(event_data, sort_keys=True).encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}
    return client.post("/anymail/mailgun/tracking/", data=json.dumps(payload), content_type="application/json")


def _mailgun_event(event: str, *, recipient: str = "ria@acme.example", message_id: str = MAILGUN_ID, **extra):
    return {
        "event": event,
        "timestamp": time.time(),
        "id": f"evt-{event}-{time.time_ns()}",
        "recipient": recipient,
        "message": {"headers": {"message-id": message_id, "to": recipient, "subject": "Hello"}},
        **extra,
    }


def test_sending_through_anymail_stores_the_providers_message_id(sent):
    assert sent.sent_at is not None
    assert sent.provider_message_id == f"<{MAILGUN_ID}>"


def test_a_mailgun_click_is_recorded_on_the_message_and_scores_the_lead(client, sent, scoring_rules):
    response = _mailgun_post(client, _mailgun_event("clicked", url="https://leadfunnel.example/pricing"))

    assert response.status_code == 200
    click = Interaction.objects.get(lead=sent.lead, type="email_click")
    assert click.properties["message_id"] == sent.pk and click.properties["url"] == "https://leadfunnel.example/pricing"
    assert click.source == "esp:mailgun"
    sent.refresh_from_db()
    assert sent.clicked_at is not None and sent.opened_at is not None
    lead = Lead.objects.get(pk=sent.lead_id)
    assert lead.engagement_points == 10 and lead.score > 0


def test_a_mailgun_hard_bounce_suppresses_the_address_lowers_the_score_and_stops_the_sequence(
    client, sent, scoring_rules
):
    response = _mailgun_post(
        client,
        _mailgun_event(
            "failed",
            severity="permanent",
            reason="bounce",
            **{"delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"}},
        ),
    )

    assert response.status_code == 200
    bounce = Interaction.objects.get(lead=sent.lead, type="email_bounce")
    assert bounce.properties["message_id"] == sent.pk and "does not exist" in bounce.properties["reason"]
    lead = Lead.objects.get(pk=sent.lead_id)
    assert lead.email_bounced_at is not None and lead.fit_points == -20
    assert suppressed_emails(["ria@acme.example"]) == {"ria@acme.example"}


def test_a_delivered_event_matches_by_recipient_when_the_message_id_is_unknown(client, mailgun):
    lead = LeadFactory(email="sol@acme.example")
    response = _mailgun_post(
        client, _mailgun_event("delivered", recipient="Sol@Acme.example", message_id="unknown@elsewhere")
    )
    assert response.status_code == 200
    delivered = Interaction.objects.get(lead=lead, type="email_delivered")
    assert "message_id" not in delivered.properties
    assert Lead.objects.get(pk=lead.pk).last_activity_at is None  # our own delivery is not the lead's activity


def test_a_bad_signature_is_refused_and_records_nothing(client, sent):
    response = _mailgun_post(client, _mailgun_event("complained"), key="not-the-signing-key")

    assert response.status_code == 400
    assert not Interaction.objects.filter(lead=sent.lead).exclude(type="email_sent").exists()
    assert not ProviderEvent.objects.exists()
    assert suppressed_emails(["ria@acme.example"]) == set()


def test_the_same_event_posted_twice_is_recorded_once(client, sent, scoring_rules):
    event = _mailgun_event("clicked", url="https://leadfunnel.example/pricing")
    for _ in range(2):
        assert _mailgun_post(client, event, token="same-token-both-times").status_code == 200

    assert Interaction.objects.filter(lead=sent.lead, type="email_click").count() == 1
    assert Lead.objects.get(pk=sent.lead_id).engagement_points == 10


def test_three_soft_bounces_in_a_row_count_as_hard_and_a_delivery_resets_the_run(client, mailgun):
    lead = LeadFactory(email="kai@acme.example")

    def soft(n: int):
        event = _mailgun_event(
            "failed", recipient=lead.email, message_id=f"m{n}@mg.leadfunnel.example", severity="temporary"
        )
        assert _mailgun_post(client, event).status_code == 200

    soft(1)
    soft(2)
    _mailgun_post(client, _mailgun_event("delivered", recipient=lead.email, message_id="m3@mg.leadfunnel.example"))
    soft(4)
    soft(5)
    assert Interaction.objects.filter(lead=lead, type="email_soft_bounce").count() == 4
    assert not Interaction.objects.filter(lead=lead, type="email_bounce").exists()
    assert suppressed_emails([lead.email]) == set()

    soft(6)  # the third in a row since the delivery
    [hard] = Interaction.objects.filter(lead=lead, type="email_bounce")
    assert hard.properties["soft_bounces_in_a_row"] == 3
    assert Lead.objects.get(pk=lead.pk).email_bounced_at is not None
    assert suppressed_emails([lead.email]) == {lead.email}


# --- Postmark: basic auth (ANYMAIL_WEBHOOK_SECRET), one JSON event per post -------------------


@pytest.fixture
def postmark(settings):
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "WEBHOOK_SECRET": WEBHOOK_SECRET}


def _postmark_post(client, event: dict, *, secret: str = WEBHOOK_SECRET):
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def _postmark_spam_complaint(email: str) -> dict:
    return {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "nurture",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "ServerID": 23,
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "sender@example.com",
        "BouncedAt": "2026-12-08T04:30:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Hello",
    }


def _postmark_unsubscribe(email: str) -> dict:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": "a4909a96-73d6-4c59-a1d4-4a1d4cbbd9e2",
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2026-12-08T04:31:00Z",
        "Recipient": email,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "nurture",
        "Metadata": {},
    }


def test_a_postmark_spam_complaint_and_unsubscribe_withdraw_consent_and_suppress(client, postmark, scoring_rules):
    complainer = LeadFactory(email="ann@acme.example")
    leaver = LeadFactory(email="bob@acme.example")
    sequence = make_sequence(steps=[{"kind": "wait", "days": 1}])
    services.enrollments_create(sequence=sequence, lead_ids=[complainer.pk, leaver.pk])

    assert _postmark_post(client, _postmark_spam_complaint(complainer.email)).status_code == 200
    assert _postmark_post(client, _postmark_unsubscribe(leaver.email)).status_code == 200

    complainer.refresh_from_db()
    leaver.refresh_from_db()
    assert Interaction.objects.filter(lead=complainer, type="email_complaint").count() == 1
    assert Interaction.objects.filter(lead=leaver, type="unsubscribe").count() == 1
    assert complainer.fit_points == -30
    assert (complainer.consent_status, leaver.consent_status) == ("opt_out", "opt_out")
    assert complainer.unsubscribed_at is not None and leaver.unsubscribed_at is not None
    assert suppressed_emails([complainer.email, leaver.email]) == {complainer.email, leaver.email}
    from leadfunnel.outbox import outbox_dispatch

    outbox_dispatch()
    assert set(Enrollment.objects.values_list("exit_reason", flat=True)) == {"unsubscribed"}

    # Postmark posts the complaint again (same ID): nothing more is recorded.
    assert _postmark_post(client, _postmark_spam_complaint(complainer.email)).status_code == 200
    assert Interaction.objects.filter(lead=complainer, type="email_complaint").count() == 1


def test_a_postmark_post_without_the_webhook_secret_is_refused_and_records_nothing(client, postmark):
    lead = LeadFactory(email="ann@acme.example")
    response = _postmark_post(client, _postmark_spam_complaint(lead.email), secret="esp:wrong")

    assert response.status_code == 400
    assert not Interaction.objects.filter(lead=lead).exists()
    assert suppressed_emails([lead.email]) == set()
    assert Lead.objects.get(pk=lead.pk).consent_status == "opt_in"


def test_provider_suppression_keeps_later_marketing_from_going_out(client, mailgun):
    """What a webhook suppressed, the executor's check skips."""
    lead = LeadFactory(email="ria@acme.example")
    _mailgun_post(client, _mailgun_event("complained", recipient=lead.email, message_id="old@mg.leadfunnel.example"))
    lead.refresh_from_db()
    Lead.objects.filter(pk=lead.pk).update(unsubscribed_at=None, consent_status="opt_in")  # re-subscribed by hand
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hello", "body": "<p>Hi</p>"}])
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    services.process_due_steps(batch_size=10)

    assert mailgun.calls == [] and mail.outbox == []
    assert Interaction.objects.get(lead=lead, type="message_skipped").properties["reason"] == "suppressed"


def test_the_providers_settings_come_from_anymail_variables(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import leadfunnel.settings as settings_module

    monkeypatch.setenv("ANYMAIL_MAILGUN_API_KEY", "key-true")
    monkeypatch.setenv("ANYMAIL_IGNORE_RECIPIENT_STATUS", "true")
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "esp:secret")
    try:
        anymail = importlib.reload(settings_module).ANYMAIL
        assert anymail["MAILGUN_API_KEY"] == "key-true"  # secrets stay text, whatever they look like
        assert anymail["IGNORE_RECIPIENT_STATUS"] is True
        assert anymail["WEBHOOK_SECRET"] == "esp:secret"
        monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "no-colon")
        with pytest.raises(ImproperlyConfigured, match="ANYMAIL_WEBHOOK_SECRET"):
            importlib.reload(settings_module)
    finally:
        for name in ("ANYMAIL_MAILGUN_API_KEY", "ANYMAIL_IGNORE_RECIPIENT_STATUS", "ANYMAIL_WEBHOOK_SECRET"):
            monkeypatch.delenv(name, raising=False)
        importlib.reload(settings_module)

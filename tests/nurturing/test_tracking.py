from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail

from leads import tracking as lead_tracking
from leads.models import Interaction, TrackedSite
from nurturing import services
from nurturing.models import Enrollment, Message
from nurturing.tracking import tracking_token
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = pytest.mark.django_db


@pytest.fixture
def message():
    sequence = make_sequence()
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    services.process_due_steps(batch_size=10)
    return Message.objects.get(lead=lead)


def _path(message, kind, index=None):
    return f"/t/{kind}/{tracking_token(message.token, kind, index)}/"


def test_the_open_pixel_is_a_gif_and_records_the_first_open_once(client, message):
    first = client.get(_path(message, "o"))
    second = client.get(_path(message, "o"))

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "image/gif" and first.content.startswith(b"GIF89a")
    message.refresh_from_db()
    assert message.opened_at is not None
    opens = Interaction.objects.filter(lead=message.lead, type="email_open")
    assert opens.count() == 1
    assert opens.get().properties["message_id"] == message.pk


def test_a_click_redirects_to_the_link_that_was_in_the_message_and_records_it(client, message):
    response = client.get(_path(message, "c", 0))

    assert response.status_code == 302
    assert response["Location"] == "https://leadfunnel.example/guide"
    click = Interaction.objects.get(lead=message.lead, type="email_click")
    assert click.properties["url"] == "https://leadfunnel.example/guide"
    message.refresh_from_db()
    assert message.clicked_at is not None and message.opened_at is not None


def test_a_click_to_a_tracked_site_carries_the_leads_identify_token(client, message):
    """The site's script (lf-track.js) sends the token with its next page view: the browser is the lead."""
    TrackedSite.objects.create(name="Ours", public_key="lf_ourssitekey", allowed_origins=["https://leadfunnel.example"])
    location = urlsplit(client.get(_path(message, "c", 0))["Location"])
    assert (location.netloc, location.path) == ("leadfunnel.example", "/guide")
    token = parse_qs(location.query)[lead_tracking.IDENTIFY_PARAM][0]
    assert lead_tracking.identify_token_parse(token) == message.lead_id


def test_links_in_the_sent_email_point_at_working_tracked_urls(client, message):
    html = mail.outbox[0].alternatives[0][0]
    start = html.index("/t/c/")
    path = html[start : html.index('"', start)]
    assert client.get(path)["Location"] == "https://leadfunnel.example/guide"


@pytest.mark.parametrize(
    "path_for",
    [
        lambda m: _path(m, "c", 5),  # an index the message does not have
        lambda m: _path(m, "c", 0)[:-3] + "xx/",  # a tampered signature
        lambda m: _path(m, "o").replace("/t/o/", "/t/c/"),  # an open token used as a click
        lambda m: f"/t/c/{tracking_token('nosuchmessage', 'c', 0)}/",  # signed, but no such message
        lambda m: "/t/c/https:%2F%2Fevil.example/",
    ],
)
def test_a_tampered_or_foreign_token_is_a_404_and_never_a_redirect(client, message, path_for):
    response = client.get(path_for(message))

    assert response.status_code == 404
    assert "Location" not in response
    assert not Interaction.objects.filter(type="email_click").exists()


def test_unsubscribe_shows_a_confirmation_page_then_one_click_post_unsubscribes(client, message):
    page = client.get(_path(message, "u"))
    assert page.status_code == 200 and b"Unsubscribe?" in page.content
    message.lead.refresh_from_db()
    assert message.lead.unsubscribed_at is None

    done = client.post(_path(message, "u"), {"List-Unsubscribe": "One-Click"})
    again = client.post(_path(message, "u"), {"List-Unsubscribe": "One-Click"})

    assert done.status_code == again.status_code == 200
    lead = message.lead
    lead.refresh_from_db()
    assert lead.unsubscribed_at is not None
    assert Interaction.objects.filter(lead=lead, type="unsubscribe").count() == 1
    enrollment = Enrollment.objects.get(lead=lead)
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "unsubscribed")


def test_one_click_unsubscribe_works_without_a_csrf_token(message):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        _path(message, "u"), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    message.lead.refresh_from_db()
    assert message.lead.unsubscribed_at is not None


def test_the_unsubscribe_link_withdraws_consent_and_suppresses_the_address(client, message):
    from leads.services.suppression import suppressed_emails

    client.post(_path(message, "u"), {"List-Unsubscribe": "One-Click"})

    lead = message.lead
    lead.refresh_from_db()
    assert (lead.consent_status, lead.consent, lead.consent_source) == ("opt_out", False, "unsubscribe_link")
    assert suppressed_emails([lead.email]) == {lead.email}

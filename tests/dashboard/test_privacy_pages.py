"""The lead page's erase and export buttons, and the admins' suppression list page."""

import json

import pytest

from leadfunnel.models import AuditEvent
from leads.models import Lead, Suppression
from leads.services import suppressed_emails, suppression_add, suppression_hash
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_web(admin_user, browser_for):
    return browser_for(admin_user)


def test_the_lead_page_offers_export_and_a_confirmed_erase_to_marketers(marketer_web, rep_web):
    lead = LeadFactory(email="page@acme.example", first_name="Paige")
    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    assert f'href="/leads/{lead.pk}/export/"' in page and f'action="/leads/{lead.pk}/erase/"' in page
    assert 'name="confirm"' in page
    page = rep_web.get(f"/leads/{lead.pk}/").content.decode()
    assert "/erase/" not in page and "/export/" not in page


def test_erasing_from_the_page_needs_the_confirmation(marketer_web, django_capture_on_commit_callbacks):
    lead = LeadFactory(email="page@acme.example", first_name="Paige")
    response = marketer_web.post(f"/leads/{lead.pk}/erase/", {}, follow=True)
    assert "Tick the confirmation" in response.content.decode()
    lead.refresh_from_db()
    assert lead.erased_at is None and lead.first_name == "Paige"

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_web.post(f"/leads/{lead.pk}/erase/", {"confirm": "1"}, follow=True)
    body = response.content.decode()
    assert response.status_code == 200 and "was erased" in body and "Paige" not in body
    lead.refresh_from_db()
    assert lead.email == f"erased-{lead.pk}@erased.invalid" and lead.erased_at is not None
    assert f'action="/leads/{lead.pk}/erase/"' not in body  # nothing left to erase
    assert suppressed_emails(["page@acme.example"]) == {"page@acme.example"}


def test_sales_reps_and_anonymous_cannot_erase_or_export_from_the_dashboard(rep_web, client):
    lead = LeadFactory(email="page@acme.example")
    assert rep_web.post(f"/leads/{lead.pk}/erase/", {"confirm": "1"}).status_code == 403
    assert rep_web.get(f"/leads/{lead.pk}/export/").status_code == 403
    assert client.post(f"/leads/{lead.pk}/erase/", {"confirm": "1"}).status_code == 302  # to the login page
    assert client.get(f"/leads/{lead.pk}/export/").status_code == 302
    assert Lead.objects.get(pk=lead.pk).erased_at is None


def test_the_export_button_downloads_the_document(marketer_web):
    lead = LeadFactory(email="page@acme.example", first_name="Paige")
    response = marketer_web.get(f"/leads/{lead.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="lead-{lead.pk}-export.json"'
    assert json.loads(response.content)["profile"]["first_name"] == "Paige"
    assert marketer_web.get("/leads/999999/export/").status_code == 404


def test_admins_see_add_and_remove_suppressions_on_the_page(admin_web):
    suppression_add(emails=["jane@example.com"], reason="unsubscribed")
    suppression_add(emails=["gone@example.com"], reason="erased")
    page = admin_web.get("/suppressions/").content.decode()
    assert "j***@example.com" in page and "Unsubscribed" in page and "(erased person)" in page
    assert "gone@" not in page and 'href="/suppressions/"' in page

    response = admin_web.post("/suppressions/", {"email": "New@Example.com", "reason": "manual"}, follow=True)
    assert "Suppressed." in response.content.decode() and "n***@example.com" in response.content.decode()
    row = Suppression.objects.get(email_hash=suppression_hash("new@example.com"))
    assert row.reason == "manual" and row.created_by is not None

    response = admin_web.post("/suppressions/", {"email": "not-an-address"}, follow=True)
    assert "Email address:" in response.content.decode()
    assert Suppression.objects.count() == 3

    response = admin_web.post(f"/suppressions/{row.pk}/delete/", follow=True)
    assert response.status_code == 200
    assert not Suppression.objects.filter(pk=row.pk).exists()
    assert AuditEvent.objects.filter(action="suppression.removed", object_id=str(row.pk)).exists()


def test_the_suppression_page_is_for_admins_only(marketer_web, rep_web, client):
    suppression_add(emails=["jane@example.com"], reason="unsubscribed")
    row = Suppression.objects.get()
    for web in (marketer_web, rep_web):
        assert web.get("/suppressions/").status_code == 403
        assert web.post("/suppressions/", {"email": "x@example.com"}).status_code == 403
        assert web.post(f"/suppressions/{row.pk}/delete/").status_code == 403
        assert "/suppressions/" not in web.get("/leads/").content.decode()
    assert client.get("/suppressions/").status_code == 302
    assert client.post(f"/suppressions/{row.pk}/delete/").status_code == 302
    assert list(Suppression.objects.values_list("pk", flat=True)) == [row.pk]

"""Each lead's consent has a status, a source and a time, whichever way it was given: a form field,
an import column, the API (the old ``consent`` boolean still works) or a double opt-in."""

import importlib

import pytest
from django.core.exceptions import ImproperlyConfigured

from leads import imports
from leads.models import Lead
from tests.factories import FormFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_a_form_field_consent_opts_the_lead_in_with_its_source_and_time(anon_client):
    FormFactory(slug="ebook")
    response = anon_client.post("/api/v1/forms/ebook/submit/", {"email": "ann@acme.example", "consent": "yes"})
    assert response.status_code == 201
    lead = Lead.objects.get(email="ann@acme.example")
    assert (lead.consent_status, lead.consent, lead.consent_source) == ("opt_in", True, "form:ebook")
    assert lead.consent_at is not None


def test_a_submission_without_consent_leaves_none(anon_client):
    FormFactory(slug="ebook")
    anon_client.post("/api/v1/forms/ebook/submit/", {"email": "bob@acme.example"})
    lead = Lead.objects.get(email="bob@acme.example")
    assert (lead.consent_status, lead.consent, lead.consent_at) == ("none", False, None)


def test_the_api_still_takes_the_consent_boolean_and_shows_the_status(marketer_client):
    lead = LeadFactory(consent_status="none", consent=False, consent_at=None, consent_source="")

    answer = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"consent": True}, format="json")
    assert answer.status_code == 200
    assert answer.json()["consent_status"] == "opt_in" and answer.json()["consent"] is True
    lead.refresh_from_db()
    assert (lead.consent_status, lead.consent_source) == ("opt_in", "user:maya")

    # false after an opt-in is a withdrawal, not "never asked"
    marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"consent": False}, format="json")
    lead.refresh_from_db()
    assert (lead.consent_status, lead.consent) == ("opt_out", False)


def test_the_api_sets_the_status_directly_but_never_pending(marketer_client):
    lead = LeadFactory(consent_status="none")
    answer = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"consent_status": "opt_out"}, format="json")
    assert answer.status_code == 200
    refused = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"consent_status": "pending"}, format="json")
    assert refused.status_code == 400 and "consent_status" in refused.json()["errors"]
    lead.refresh_from_db()
    assert lead.consent_status == "opt_out"


def test_an_import_column_records_consent_from_the_import():
    LeadFactory(email="known@acme.example", consent_status="none", consent=False)
    LeadFactory(email="withdrawn@acme.example", consent_status="opt_out", consent=False)
    csv = "email,consent\nnew@acme.example,yes\nknown@acme.example,1\nwithdrawn@acme.example,yes\nno@acme.example,no\n"
    job = imports.import_create(
        actor=None,
        content=csv.encode(),
        filename="c.csv",
        mapping={"email": "email", "consent": "consent"},
        queue=False,
    )
    imports.import_run(job_id=job.pk)
    status = dict(Lead.objects.values_list("email", "consent_status"))
    assert status == {
        "new@acme.example": "opt_in",
        "known@acme.example": "opt_in",
        "withdrawn@acme.example": "opt_out",  # a file never overrides a withdrawal
        "no@acme.example": "none",
    }
    assert Lead.objects.get(email="new@acme.example").consent_source == f"import:{job.pk}"


def test_a_bad_consent_cell_is_a_row_error():
    csv = "email,consent\nann@acme.example,maybe\n"
    job = imports.import_create(
        actor=None,
        content=csv.encode(),
        filename="c.csv",
        mapping={"email": "email", "consent": "consent"},
        queue=False,
    )
    job = imports.import_run(job_id=job.pk)
    assert job.error_count == 1 and not Lead.objects.exists()


def test_the_consent_requirement_setting_is_parsed_strictly(monkeypatch):
    import leadfunnel.settings as settings_module

    monkeypatch.setenv("CONSENT_REQUIRED_FOR_MARKETING", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="CONSENT_REQUIRED_FOR_MARKETING"):
        importlib.reload(settings_module)
    monkeypatch.setenv("CONSENT_REQUIRED_FOR_MARKETING", " None ")
    assert importlib.reload(settings_module).CONSENT_REQUIRED_FOR_MARKETING == "none"
    monkeypatch.delenv("CONSENT_REQUIRED_FOR_MARKETING")
    assert importlib.reload(settings_module).CONSENT_REQUIRED_FOR_MARKETING == "opt_in"

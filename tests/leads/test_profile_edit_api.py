"""Who edits a lead's profile through the API: marketers and admins, and the rep who owns it."""

import pytest

from leads.models import Lead
from tests.factories import LeadFactory


@pytest.mark.django_db
def test_the_owning_rep_edits_the_profile_and_another_rep_may_not(sales_client, other_rep_client, sales_rep):
    lead = LeadFactory(owner=sales_rep, stage="sal", title="Intern")
    answer = sales_client.patch(f"/api/v1/leads/{lead.pk}/", {"title": "Head of IT"}, format="json")
    assert answer.status_code == 200 and answer.json()["title"] == "Head of IT"
    refused = other_rep_client.patch(f"/api/v1/leads/{lead.pk}/", {"title": "Nobody"}, format="json")
    assert refused.status_code == 403
    assert Lead.objects.get(pk=lead.pk).title == "Head of IT"


@pytest.mark.django_db
def test_a_bad_value_from_the_owning_rep_is_a_400_naming_the_field(sales_client, sales_rep):
    lead = LeadFactory(owner=sales_rep, stage="sal", email="keep@acme.example")
    answer = sales_client.patch(f"/api/v1/leads/{lead.pk}/", {"email": "nope"}, format="json")
    assert answer.status_code == 400 and "email" in answer.json()["errors"]
    assert Lead.objects.get(pk=lead.pk).email == "keep@acme.example"

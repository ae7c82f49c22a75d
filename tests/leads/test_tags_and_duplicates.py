"""Tags (normalised, filterable, bulk-edited) and the possible-duplicates finder."""

import pytest

from leadfunnel.models import AuditEvent
from leads.models import Lead
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


# --- tags -------------------------------------------------------------------------------------


def test_tags_are_normalised_when_a_lead_is_edited(marketer_client):
    lead = LeadFactory()
    response = marketer_client.patch(
        f"/api/v1/leads/{lead.pk}/", {"tags": ["  VIP ", "Trade   Show", "vip"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["tags"] == ["trade show", "vip"]
    lead.refresh_from_db()
    assert lead.tags == ["trade show", "vip"]


@pytest.mark.parametrize("tags", [["x" * 51], ["   "], "vip", [{"a": 1}], [f"t{i}" for i in range(51)]])
def test_bad_tags_are_a_400_naming_the_field(marketer_client, tags):
    lead = LeadFactory(tags=["keep"])
    response = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"tags": tags}, format="json")
    assert response.status_code == 400
    assert "tags" in response.json()["errors"]
    lead.refresh_from_db()
    assert lead.tags == ["keep"]


def test_the_leads_api_filters_by_tag(sales_client):
    tagged = LeadFactory(tags=["vip", "webinar"])
    LeadFactory(tags=["webinar"])
    LeadFactory(tags=[])
    response = sales_client.get("/api/v1/leads/?tag=VIP")
    assert response.status_code == 200
    assert [lead["id"] for lead in response.json()["results"]] == [tagged.pk]
    assert sales_client.get("/api/v1/leads/?tag=webinar").json()["count"] == 2
    bad = sales_client.get("/api/v1/leads/?tag=" + "x" * 60)
    assert bad.status_code == 400 and "tag" in bad.json()["errors"]


def test_tags_are_added_and_removed_in_bulk(marketer_client, marketer):
    a = LeadFactory(tags=["old"])
    b = LeadFactory(tags=["old", "vip"])
    untouched = LeadFactory(tags=["old"])
    response = marketer_client.post(
        "/api/v1/leads/tags/", {"ids": [a.pk, b.pk], "add": [" VIP "], "remove": ["old"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["changed"] == sorted([a.pk, b.pk])
    assert Lead.objects.get(pk=a.pk).tags == ["vip"]
    assert Lead.objects.get(pk=b.pk).tags == ["vip"]
    assert Lead.objects.get(pk=untouched.pk).tags == ["old"]
    assert AuditEvent.objects.filter(action="lead.tagged").count() == 2


def test_bulk_tagging_refuses_bad_input_and_sales(marketer_client, sales_client):
    lead = LeadFactory(tags=[])
    assert (
        marketer_client.post("/api/v1/leads/tags/", {"ids": [lead.pk], "add": [""]}, format="json").status_code == 400
    )
    assert marketer_client.post("/api/v1/leads/tags/", {"ids": [lead.pk]}, format="json").status_code == 400
    assert marketer_client.post("/api/v1/leads/tags/", {"ids": "1", "add": ["x"]}, format="json").status_code == 400
    assert sales_client.post("/api/v1/leads/tags/", {"ids": [lead.pk], "add": ["x"]}, format="json").status_code == 403
    lead.refresh_from_db()
    assert lead.tags == []


# --- possible duplicates ----------------------------------------------------------------------


@pytest.fixture
def people(db):
    acme = CompanyFactory(name="Acme")
    return {
        "jo": LeadFactory(email="jo.smith@acme.example", first_name="Jo", last_name="Smith", company=acme, phone=""),
        "jo_again": LeadFactory(
            email="jsmith@acme.example", first_name="JO", last_name="smith ", company=acme, phone=""
        ),
        "jo_elsewhere": LeadFactory(
            email="jo@other.example", first_name="Jo", last_name="Smith", company=CompanyFactory(), phone=""
        ),
        "phone_a": LeadFactory(email="p1@a.example", first_name="Pat", last_name="A", phone="+49 (30) 555-0100"),
        "phone_b": LeadFactory(email="p2@b.example", first_name="Kim", last_name="B", phone="4930 5550100"),
        "gmail": LeadFactory(email="mary.jones@gmail.com", first_name="Mary", last_name="J", phone=""),
        "gmail_variant": LeadFactory(email="maryjones+news@googlemail.com", first_name="M", last_name="J", phone=""),
        "plus_a": LeadFactory(email="lee@firm.example", first_name="Lee", last_name="One", phone=""),
        "plus_b": LeadFactory(email="lee+crm@firm.example", first_name="Lee", last_name="Two", phone=""),
        "dots_elsewhere": LeadFactory(email="l.ee@firm.example", first_name="L", last_name="Three", phone=""),
    }


def _pairs(body):
    return {(r["lead"]["email"], r["duplicate"]["email"]): r["reasons"] for r in body["results"]}


def test_possible_duplicates_are_found_by_each_rule_and_not_for_different_people(marketer_client, people):
    response = marketer_client.get("/api/v1/leads/duplicates/")
    assert response.status_code == 200
    pairs = _pairs(response.json())
    assert pairs == {
        ("jo.smith@acme.example", "jsmith@acme.example"): ["same_name_and_company"],
        ("p1@a.example", "p2@b.example"): ["same_phone"],
        ("mary.jones@gmail.com", "maryjones+news@googlemail.com"): ["email_variant"],
        ("lee@firm.example", "lee+crm@firm.example"): ["email_variant"],
    }
    assert response.json()["count"] == 4
    first = response.json()["results"][0]
    assert first["review_url"] == f"/leads/{first['lead']['id']}/merge/?duplicate={first['duplicate']['id']}"


def test_possible_duplicates_of_one_lead(marketer_client, people):
    response = marketer_client.get(f"/api/v1/leads/duplicates/?lead={people['plus_b'].pk}")
    assert list(_pairs(response.json())) == [("lee@firm.example", "lee+crm@firm.example")]


def test_possible_duplicates_are_for_marketers(sales_client, people):
    assert sales_client.get("/api/v1/leads/duplicates/").status_code == 403


def test_a_key_shared_by_many_leads_is_placeholder_data_not_a_person(marketer_client):
    from leads.sql import DUPLICATE_GROUP_MAX

    LeadFactory.create_batch(DUPLICATE_GROUP_MAX + 1, phone="+1 000 000 0000")
    a = LeadFactory(phone="+44 20 7946 0001")
    b = LeadFactory(phone="(44) 20-7946-0001")
    body = marketer_client.get("/api/v1/leads/duplicates/").json()
    assert [(r["lead"]["id"], r["duplicate"]["id"], r["reasons"]) for r in body["results"]] == [
        (a.pk, b.pk, ["same_phone"])
    ]


def test_the_data_migration_normalises_stored_tags():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("leads.migrations.0008_normalise_lead_tags")
    messy = LeadFactory(tags=["  VIP", "vip ", "Trade   Show", ""])
    clean = LeadFactory(tags=["a", "b"])
    migration.normalise(apps, None)
    assert Lead.objects.get(pk=messy.pk).tags == ["trade show", "vip"]
    assert Lead.objects.get(pk=clean.pk).tags == ["a", "b"]

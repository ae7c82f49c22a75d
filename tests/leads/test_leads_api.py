"""Leads, timeline and forms over the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Form, Lead, StageTransition
from leads.services import interaction_record, lead_change_stage
from tests.factories import CompanyFactory, FormFactory, InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {
    "id", "email", "first_name", "last_name", "title", "company", "stage", "score", "fit_score",
    "engagement_score", "owner", "source", "created_at", "stage_changed_at", "sla_due_at",
}  # fmt: skip


def emails(response):
    return [row["email"] for row in response.json()["results"]]


def test_the_list_shows_the_contract_fields_and_paginates(sales_client):
    LeadFactory.create_batch(3, company=CompanyFactory(name="Initech"))
    response = sales_client.get("/api/v1/leads/?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and body["next"] and len(body["results"]) == 2
    assert set(body["results"][0]) >= CONTRACT_FIELDS
    assert body["results"][0]["company"] == "Initech"


def test_the_list_filters_by_email_stage_owner_score_source_and_search(marketer_client, sales_client, sales_rep):
    ada = LeadFactory(
        email="ada@analytical.example", first_name="Ada", last_name="Lovelace", score=80, source="webinar"
    )
    LeadFactory(email="bob@builder.example", first_name="Bob", score=20, source="import", company_name="Builders Ltd")
    carl = LeadFactory(email="carl@acme.example", first_name="Carl", score=65)
    lead_change_stage(lead=carl, to_stage="mql", cause="rule", owner=sales_rep)

    assert emails(marketer_client.get("/api/v1/leads/?email=ADA@Analytical.example")) == [ada.email]
    assert emails(marketer_client.get("/api/v1/leads/?stage=mql")) == [carl.email]
    assert set(emails(marketer_client.get("/api/v1/leads/?stage=mql,visitor"))) == {
        ada.email,
        carl.email,
        "bob@builder.example",
    }
    assert emails(marketer_client.get(f"/api/v1/leads/?owner={sales_rep.pk}")) == [carl.email]
    assert emails(sales_client.get("/api/v1/leads/?owner=me")) == [carl.email]
    assert emails(marketer_client.get("/api/v1/leads/?min_score=60&ordering=-score")) == [ada.email, carl.email]
    assert emails(marketer_client.get("/api/v1/leads/?source=import")) == ["bob@builder.example"]
    assert emails(marketer_client.get("/api/v1/leads/?search=lovelace")) == [ada.email]
    assert emails(marketer_client.get("/api/v1/leads/?search=builders")) == ["bob@builder.example"]
    carl.company = CompanyFactory(name="Carlsberg Group")
    carl.save(update_fields=["company"])
    assert emails(marketer_client.get("/api/v1/leads/?search=carlsberg")) == [carl.email]
    assert emails(marketer_client.get("/api/v1/leads/?search=group")) == [carl.email]  # the company's name only
    assert emails(marketer_client.get("/api/v1/leads/?search=ada+analytical")) == [ada.email]
    assert emails(marketer_client.get("/api/v1/leads/?ordering=score")) == [
        "bob@builder.example",
        carl.email,
        ada.email,
    ]
    bad = marketer_client.get("/api/v1/leads/?stage=nirvana")
    assert bad.status_code == 400 and "nirvana" in bad.json()["message"]
    assert marketer_client.get("/api/v1/leads/?min_score=lots").status_code == 400


def test_listing_leads_takes_the_same_queries_for_5_or_50_leads(marketer_client, django_assert_num_queries):
    LeadFactory.create_batch(5, company=CompanyFactory())
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        marketer_client.get("/api/v1/leads/")
    LeadFactory.create_batch(45, company=CompanyFactory())
    with django_assert_num_queries(len(ctx.captured_queries)):
        assert len(marketer_client.get("/api/v1/leads/").json()["results"]) == 50


def test_a_marketer_creates_a_lead_with_a_chosen_source(marketer_client):
    response = marketer_client.post(
        "/api/v1/leads/",
        {"email": "Trade.Show@Globex.example", "first_name": "Tess", "source": "tradeshow-2026", "channel": "event",
         "custom_fields": {"booth": "B12"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert response.json()["id"] == lead.pk
    assert (lead.email, lead.source, lead.channel, lead.stage) == (
        "trade.show@globex.example",
        "tradeshow-2026",
        "event",
        "visitor",
    )
    assert lead.custom_fields == {"booth": "B12"} and lead.company.domain == "globex.example"
    assert StageTransition.objects.get(lead=lead).from_stage == ""
    duplicate = marketer_client.post(
        "/api/v1/leads/", {"email": "trade.show@GLOBEX.example", "source": "x"}, format="json"
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_email"


def test_creating_a_lead_refuses_stage_score_and_owner(marketer_client):
    response = marketer_client.post(
        "/api/v1/leads/", {"email": "x@acme.example", "source": "api", "stage": "sql"}, format="json"
    )
    assert response.status_code == 400 and "stage" in response.json()["errors"]
    assert not Lead.objects.exists()


def test_sales_reps_read_but_do_not_write_leads(sales_client):
    lead = LeadFactory()
    assert sales_client.get(f"/api/v1/leads/{lead.pk}/").status_code == 200
    assert (
        sales_client.post("/api/v1/leads/", {"email": "a@b.example", "source": "x"}, format="json").status_code == 403
    )
    assert sales_client.patch(f"/api/v1/leads/{lead.pk}/", {"title": "CEO"}, format="json").status_code == 403


def test_patch_changes_profile_fields_and_refuses_stage_score_owner(marketer_client, sales_rep):
    lead = LeadFactory(title="Intern")
    response = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"title": "VP Sales", "tags": ["vip"]}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "VP Sales"
    for field, value in (("stage", "customer"), ("score", 99), ("owner", sales_rep.pk), ("cycle", 3)):
        refused = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {field: value, "title": "CEO"}, format="json")
        assert refused.status_code == 400 and field in refused.json()["errors"]
    lead.refresh_from_db()
    assert (lead.stage, lead.owner, lead.title, lead.tags) == ("visitor", None, "VP Sales", ["vip"])
    taken = LeadFactory(email="taken@acme.example")
    clash = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"email": taken.email.upper()}, format="json")
    assert clash.status_code == 409
    assert marketer_client.get("/api/v1/leads/999999/").status_code == 404


def test_the_timeline_is_newest_first_with_messages_and_stage_changes(marketer_client, sales_rep):
    lead = LeadFactory()
    start = timezone.now() - timedelta(days=3)
    InteractionFactory(lead=lead, type="page_view", occurred_at=start)
    InteractionFactory(
        lead=lead, type="email_sent", occurred_at=start + timedelta(days=1), properties={"subject": "Hi"}
    )
    lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sales_rep, reason="Score 70")
    interaction_record(lead=lead, type="demo_request")
    response = marketer_client.get(f"/api/v1/leads/{lead.pk}/timeline/")
    assert response.status_code == 200
    items = response.json()["results"]
    assert response.json()["count"] == 4
    assert [i["kind"] for i in items] == ["interaction", "stage_change", "message", "interaction"]
    assert items[0]["type"] == "demo_request"
    assert (items[1]["from_stage"], items[1]["to_stage"], items[1]["reason"]) == ("visitor", "mql", "Score 70")
    assert items[2]["properties"] == {"subject": "Hi"}
    page = marketer_client.get(f"/api/v1/leads/{lead.pk}/timeline/?page=2&page_size=3").json()
    assert [i["type"] for i in page["results"]] == ["page_view"]
    assert marketer_client.get("/api/v1/leads/999999/timeline/").status_code == 404


def test_the_timeline_query_count_does_not_grow_with_history(marketer_client, django_assert_num_queries):
    small, big = LeadFactory(), LeadFactory()
    InteractionFactory.create_batch(2, lead=small)
    InteractionFactory.create_batch(120, lead=big)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        marketer_client.get(f"/api/v1/leads/{small.pk}/timeline/")
    with django_assert_num_queries(len(ctx.captured_queries)):
        assert len(marketer_client.get(f"/api/v1/leads/{big.pk}/timeline/").json()["results"]) == 50


def test_marketers_manage_forms(marketer_client, sales_client):
    created = marketer_client.post(
        "/api/v1/forms/",
        {"slug": "ebook", "name": "Ebook download", "kind": "content_download", "channel_weight": 10,
         "allowed_origins": ["https://WWW.acme.example/"]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201
    assert created.json()["allowed_origins"] == ["https://www.acme.example"]
    assert created.json()["submit_url"].endswith("/api/v1/forms/ebook/submit/")
    assert marketer_client.get("/api/v1/forms/").json()["count"] == 1
    patched = marketer_client.patch("/api/v1/forms/ebook/", {"active": False}, format="json")
    assert patched.status_code == 200 and Form.objects.get().active is False
    bad = marketer_client.post(
        "/api/v1/forms/", {"slug": "x", "name": "X", "allowed_origins": ["not an origin"]}, format="json"
    )
    assert bad.status_code == 400
    assert sales_client.get("/api/v1/forms/").status_code == 403
    assert marketer_client.get("/api/v1/forms/nope/").status_code == 404
    FormFactory(slug="dup")
    assert marketer_client.post("/api/v1/forms/", {"slug": "dup", "name": "Dup"}, format="json").status_code == 400


def test_every_leads_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/forms/{slug}/submit/",
        "/api/v1/leads/",
        "/api/v1/leads/{lead_id}/timeline/",
        "/api/v1/leads/{lead_id}/qualify/",
        "/api/v1/interactions/bulk/",
    ):
        assert path in schema

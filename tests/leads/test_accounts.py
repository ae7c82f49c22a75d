"""Accounts: GET /api/v1/companies/ and /api/v1/companies/<id>/, the account score, and leads of
every intake linked to their company by email domain."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import imports
from leads.models import Company, ImportJob, Lead, Opportunity
from tests.factories import CompanyFactory, InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts_world(db):
    now = timezone.now()
    northwind = CompanyFactory(name="Northwind", domain="northwind.example")
    contoso = CompanyFactory(name="Contoso", domain="contoso.example")
    quiet = CompanyFactory(name="Quiet Ltd", domain="quiet.example")
    # Northwind: best fit 40, recent engagement 30 + 20 (the stale 50 does not count) → 90.
    a = LeadFactory(company=northwind, fit_score=40, engagement_score=30, last_activity_at=now, stage="sal", score=70)
    LeadFactory(company=northwind, fit_score=10, engagement_score=20, last_activity_at=now - timedelta(days=5))
    LeadFactory(company=northwind, fit_score=5, engagement_score=50, last_activity_at=now - timedelta(days=200))
    # Contoso: 60 + 70 = 130 → capped at 100.
    LeadFactory(company=contoso, fit_score=60, engagement_score=70, last_activity_at=now)
    # Quiet: nobody engaged; fit 15.
    LeadFactory(company=quiet, fit_score=15, engagement_score=0)
    Opportunity.objects.create(
        lead=a, buying_cycle="Q2", influencer="CFO", timeframe="Q2", opportunity_size=Decimal("12000"), next_step="Demo"
    )
    Opportunity.objects.create(
        lead=a, buying_cycle="Q1", influencer="CFO", timeframe="Q1", opportunity_size=Decimal("999"), next_step="-",
        status="lost",
    )  # fmt: skip
    InteractionFactory(lead=a, occurred_at=now)
    InteractionFactory(lead=a, occurred_at=now - timedelta(days=7))
    InteractionFactory(lead=a, occurred_at=now - timedelta(days=7))
    InteractionFactory(lead=a, occurred_at=now - timedelta(days=200))
    return {"northwind": northwind, "contoso": contoso, "quiet": quiet, "a": a}


def test_companies_are_listed_best_account_first(marketer_client, accounts_world):
    response = marketer_client.get("/api/v1/companies/?ordering=-account_score")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [(c["name"], c["account_score"]) for c in body["results"]] == [
        ("Contoso", 100),
        ("Northwind", 90),
        ("Quiet Ltd", 15),
    ]
    northwind = body["results"][1]
    assert (northwind["people"], northwind["best_fit"], northwind["recent_engagement"]) == (3, 40, 50)
    ascending = marketer_client.get("/api/v1/companies/?ordering=account_score").json()["results"]
    assert [c["name"] for c in ascending] == ["Quiet Ltd", "Northwind", "Contoso"]


def test_the_companies_list_is_one_query_whatever_the_number_of_companies(marketer_client, accounts_world):
    marketer_client.get("/api/v1/companies/")  # warm the token and session lookups
    with CaptureQueriesContext(connection) as one:
        marketer_client.get("/api/v1/companies/")
    CompanyFactory.create_batch(5)
    with CaptureQueriesContext(connection) as more:
        marketer_client.get("/api/v1/companies/")
    assert len(more) == len(one)


def test_companies_can_be_searched(sales_client, accounts_world):
    response = sales_client.get("/api/v1/companies/?search=north")
    assert [c["name"] for c in response.json()["results"]] == ["Northwind"]
    assert [c["name"] for c in sales_client.get("/api/v1/companies/?search=contoso.ex").json()["results"]] == [
        "Contoso"
    ]


def test_an_unknown_ordering_is_a_400(marketer_client, accounts_world):
    response = marketer_client.get("/api/v1/companies/?ordering=password")
    assert response.status_code == 400
    assert "ordering" in response.json()["errors"]


def test_a_company_shows_its_people_engagement_and_open_opportunities(admin_client_api, accounts_world):
    company = accounts_world["northwind"]
    response = admin_client_api.get(f"/api/v1/companies/{company.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["account_score"] == 90 and body["name"] == "Northwind"
    assert [lead["id"] for lead in body["leads"]][0] == accounts_world["a"].pk
    assert {lead["stage"] for lead in body["leads"]} == {"sal", "visitor"}
    assert [(o["opportunity_size"], o["status"]) for o in body["open_opportunities"]] == [("12000.00", "open")]
    assert body["open_pipeline"] == 12000.0
    weeks = body["engagement_by_week"]
    assert len(weeks) == 12
    assert weeks[-1]["interactions"] == 1 and weeks[-2]["interactions"] == 2
    assert sum(w["interactions"] for w in weeks) == 3  # the 200-day-old event is outside the 12 weeks


def test_a_company_page_costs_the_same_queries_whatever_its_size(marketer_client, accounts_world):
    company = accounts_world["northwind"]
    marketer_client.get(f"/api/v1/companies/{company.pk}/")
    with CaptureQueriesContext(connection) as small:
        marketer_client.get(f"/api/v1/companies/{company.pk}/")
    for lead in LeadFactory.create_batch(10, company=company):
        InteractionFactory(lead=lead)
        Opportunity.objects.create(
            lead=lead, buying_cycle="-", influencer="-", timeframe="-", opportunity_size=Decimal("10"), next_step="-"
        )
    with CaptureQueriesContext(connection) as large:
        marketer_client.get(f"/api/v1/companies/{company.pk}/")
    # auth (token, user) + the company with its score, its leads, its weekly engagement, its opportunities
    assert len(large) == len(small) <= 6


def test_an_unknown_company_is_404(marketer_client):
    assert marketer_client.get("/api/v1/companies/424242/").status_code == 404


def test_companies_are_for_signed_in_roles_only(anon_client, client_for, accounts_world):
    from tests.factories import UserFactory

    assert anon_client.get("/api/v1/companies/").status_code in (401, 403)
    nobody = client_for(UserFactory(username="nobody"))
    assert nobody.get("/api/v1/companies/").status_code == 403


def test_a_lead_created_by_the_api_is_linked_to_its_company_by_domain(marketer_client):
    company = CompanyFactory(name="Fabrikam", domain="fabrikam.example")
    response = marketer_client.post("/api/v1/leads/", {"email": "ann@Fabrikam.example", "source": "crm"}, format="json")
    assert response.status_code == 201
    assert Lead.objects.get(email="ann@fabrikam.example").company_id == company.pk
    created = marketer_client.post("/api/v1/leads/", {"email": "bo@newco.example", "source": "crm"}, format="json")
    assert Lead.objects.get(pk=created.json()["id"]).company.domain == "newco.example"


def test_imported_leads_are_linked_to_their_company_by_domain(marketer):
    existing = CompanyFactory(name="Fabrikam", domain="fabrikam.example")
    stale = LeadFactory(email="old@fabrikam.example", company=None)
    csv = (
        "email,first_name,company\n"
        "ann@fabrikam.example,Ann,Fabrikam Inc\n"
        "old@fabrikam.example,Old,\n"
        "cy@newco.example,Cy,New Co\n"
        "free@gmail.com,Free,\n"
    )
    job = imports.import_create(actor=marketer, content=csv.encode(), filename="leads.csv", mapping=None, queue=False)
    assert imports.import_run(job_id=job.pk).status == ImportJob.Status.DONE

    assert Lead.objects.get(email="ann@fabrikam.example").company_id == existing.pk
    stale.refresh_from_db()
    assert stale.company_id == existing.pk
    newco = Company.objects.get(domain="newco.example")
    assert newco.name == "New Co" and Lead.objects.get(email="cy@newco.example").company_id == newco.pk
    assert Lead.objects.get(email="free@gmail.com").company_id is None
    assert not Company.objects.filter(domain="gmail.com").exists()

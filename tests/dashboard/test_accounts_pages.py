"""Dashboard pages of accounts, tags and merging: /companies/, /companies/<id>/, /leads/duplicates/,
/leads/<id>/merge/ and the lead page's company-and-tags card."""

from decimal import Decimal

import pytest

from leadfunnel.models import AuditEvent
from leads.models import Interaction, Lead, LeadAlias, Opportunity
from tests.factories import CompanyFactory, InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    acme = CompanyFactory(name="Acme")
    return {
        "jo": LeadFactory(email="jo.smith@acme.example", first_name="Jo", last_name="Smith", company=acme, phone=""),
        "phone_a": LeadFactory(email="p1@a.example", first_name="Pat", last_name="A", phone="+49 (30) 555-0100"),
        "phone_b": LeadFactory(email="p2@b.example", first_name="Kim", last_name="B", phone="4930 5550100"),
        "plus_a": LeadFactory(email="lee@firm.example", first_name="Lee", last_name="One", phone=""),
        "plus_b": LeadFactory(email="lee+crm@firm.example", first_name="Lee", last_name="Two", phone=""),
    }


def test_the_leads_page_filters_by_tag_and_tags_in_bulk(marketer_web):
    tagged = LeadFactory(tags=["vip"], first_name="Tagged", last_name="Person")
    other = LeadFactory(tags=[], first_name="Other", last_name="Person")
    page = marketer_web.get("/leads/?tag=vip")
    assert page.status_code == 200
    assert "/leads/export.csv?tag=vip" in page.content.decode()
    exported = b"".join(marketer_web.get("/leads/export.csv?tag=vip").streaming_content).decode()
    assert tagged.email in exported and other.email not in exported
    assert "Tagged Person" in page.content.decode() and "Other Person" not in page.content.decode()
    response = marketer_web.post("/leads/bulk/", {"action": "add_tag", "tag": "Event 2026", "ids": [other.pk]})
    assert response.status_code == 302
    assert Lead.objects.get(pk=other.pk).tags == ["event 2026"]
    marketer_web.post("/leads/bulk/", {"action": "remove_tag", "tag": "vip", "ids": [tagged.pk]})
    assert Lead.objects.get(pk=tagged.pk).tags == []


def test_the_duplicates_page_links_each_pair_to_the_merge_preview(marketer_web, people):
    page = marketer_web.get("/leads/duplicates/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/leads/{people['plus_a'].pk}/merge/?duplicate={people['plus_b'].pk}" in html
    assert "Same phone number" in html


def test_the_companies_page_lists_companies_by_account_score_with_links(rep_web):
    best = CompanyFactory(name="Best Co")
    other = CompanyFactory(name="Other Co")
    LeadFactory(company=best, fit_score=50)
    LeadFactory(company=other, fit_score=10)
    page = rep_web.get("/companies/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("Best Co") < html.index("Other Co")
    assert f'href="/companies/{best.pk}/"' in html
    assert 'href="/companies/"' in html  # the navigation
    assert "Other Co" not in rep_web.get("/companies/?q=best").content.decode()


def test_the_company_page_shows_people_engagement_and_pipeline(marketer_web):
    company = CompanyFactory(name="Northwind")
    lead = LeadFactory(company=company, first_name="Dana", last_name="Kim", stage="sql", score=80, fit_score=40)
    InteractionFactory(lead=lead)
    Opportunity.objects.create(
        lead=lead,
        buying_cycle="Q2",
        influencer="CFO",
        timeframe="Q2",
        opportunity_size=Decimal("12000"),
        next_step="Demo",
    )
    page = marketer_web.get(f"/companies/{company.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dana Kim" in html and f'href="/leads/{lead.pk}/"' in html
    assert 'id="account-score">40<' in html
    assert "12,000" in html
    assert "1 interaction" in html
    assert marketer_web.get("/companies/987654/").status_code == 404


def test_the_lead_page_links_the_company_and_edits_tags(marketer_web):
    company = CompanyFactory(name="Northwind")
    lead = LeadFactory(company=company, tags=["vip"])
    html = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    assert f'href="/companies/{company.pk}/"' in html
    assert 'href="/leads/?tag=vip"' in html
    assert f'href="/leads/{lead.pk}/merge/"' in html
    marketer_web.post(f"/leads/{lead.pk}/tags/", {"add": " Hot Lead "})
    assert Lead.objects.get(pk=lead.pk).tags == ["hot lead", "vip"]
    marketer_web.post(f"/leads/{lead.pk}/tags/", {"remove": "vip"})
    assert Lead.objects.get(pk=lead.pk).tags == ["hot lead"]
    response = marketer_web.post(f"/leads/{lead.pk}/tags/", {"add": "x" * 60}, follow=True)
    assert "at most 50 characters" in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).tags == ["hot lead"]


def test_the_leads_list_links_each_company(marketer_web):
    company = CompanyFactory(name="Northwind")
    LeadFactory(company=company)
    assert f'href="/companies/{company.pk}/"' in marketer_web.get("/leads/").content.decode()


def test_the_merge_preview_shows_both_profiles_and_defaults_to_the_fuller_value(marketer_web, people):
    survivor, duplicate = people["plus_a"], people["plus_b"]
    Lead.objects.filter(pk=survivor.pk).update(title="CTO")
    Lead.objects.filter(pk=duplicate.pk).update(title="Chief Technology Officer", city="Berlin")
    page = marketer_web.get(f"/leads/{survivor.pk}/merge/?duplicate={duplicate.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "lee@firm.example" in html and "lee+crm@firm.example" in html
    assert 'name="field_title" value="duplicate" checked' in html
    assert 'name="field_last_name" value="survivor" checked' in html  # "One" and "Two": a tie keeps ours
    assert 'name="field_city" value="duplicate" checked' in html


def test_merging_from_the_preview_honours_the_choices(marketer_web, marketer, people):
    survivor, duplicate = people["plus_a"], people["plus_b"]
    InteractionFactory(lead=duplicate)
    Lead.objects.filter(pk=duplicate.pk).update(title="Chief Technology Officer")
    response = marketer_web.post(
        f"/leads/{survivor.pk}/merge/",
        {"duplicate": duplicate.pk, "field_title": "survivor", "field_last_name": "duplicate"},
    )
    assert response.status_code == 302 and response["Location"] == f"/leads/{survivor.pk}/"
    survivor.refresh_from_db()
    assert survivor.last_name == "Two" and survivor.title == "Head of Marketing"
    assert not Lead.objects.filter(pk=duplicate.pk).exists()
    assert Interaction.objects.filter(lead=survivor).count() == 1
    assert LeadAlias.objects.get(email="lee+crm@firm.example").lead == survivor
    assert AuditEvent.objects.get(action="lead.merged").actor == marketer


def test_the_merge_page_without_a_duplicate_lists_candidates(marketer_web, people):
    html = marketer_web.get(f"/leads/{people['plus_a'].pk}/merge/").content.decode()
    assert f"?duplicate={people['plus_b'].pk}" in html
    assert f"?duplicate={people['jo'].pk}" not in html


def test_merging_a_lead_with_itself_from_the_page_changes_nothing(marketer_web, people):
    lead = people["jo"]
    response = marketer_web.post(f"/leads/{lead.pk}/merge/", {"duplicate": lead.pk}, follow=True)
    assert "Choose another existing lead" in response.content.decode()
    assert Lead.objects.filter(pk=lead.pk).exists() and not LeadAlias.objects.exists()


def test_sales_reps_cannot_merge_or_see_duplicates_from_the_dashboard(rep_web, people):
    survivor, duplicate = people["plus_a"], people["plus_b"]
    assert rep_web.get(f"/leads/{survivor.pk}/merge/?duplicate={duplicate.pk}").status_code == 403
    assert rep_web.post(f"/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}).status_code == 403
    assert rep_web.get("/leads/duplicates/").status_code == 403
    assert rep_web.post(f"/leads/{survivor.pk}/tags/", {"add": "x"}).status_code == 403
    assert Lead.objects.filter(pk=duplicate.pk).exists()

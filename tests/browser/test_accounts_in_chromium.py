"""Accounts and merging in Chromium: a company's page, and merging a duplicate from the lead page
through the side-by-side preview."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from leads.models import Interaction, Lead, LeadAlias, Opportunity
from leads.services import interaction_record
from tests.browser.conftest import log_in
from tests.factories import CompanyFactory, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_sales_rep_opens_a_company_from_the_companies_list(page, live_server, sales_rep, shot):
    now = timezone.now()
    northwind = CompanyFactory(name="Northwind Traders", domain="northwind.example")
    CompanyFactory(name="Quiet Ltd", domain="quiet.example")
    dana = LeadFactory(
        company=northwind, first_name="Dana", last_name="Kim", stage="sql", fit_score=45, engagement_score=20,
        last_activity_at=now, score=65,
    )  # fmt: skip
    LeadFactory(company=northwind, first_name="Lee", last_name="Park", fit_score=10, engagement_score=15,
                last_activity_at=now)  # fmt: skip
    interaction_record(lead=dana.pk, type="page_view", properties={"url": "/pricing"})
    interaction_record(lead=dana.pk, type="webinar_attended", occurred_at=now - timedelta(days=8))
    Opportunity.objects.create(
        lead=dana,
        buying_cycle="Q2",
        influencer="CFO",
        timeframe="Q2",
        opportunity_size=Decimal("12000"),
        next_step="Demo",
    )
    dana.refresh_from_db()
    base = live_server.url
    log_in(page, base, "sam")

    page.get_by_role("link", name="Companies").click()
    page.wait_for_url("**/companies/")
    rows = page.locator("#companies-table tbody tr")
    assert rows.first.inner_text().startswith("Northwind Traders")
    shot(page, "accounts-01-companies")

    page.get_by_role("link", name="Northwind Traders").click()
    page.wait_for_url(f"**/companies/{northwind.pk}/")
    expected = min(100, dana.fit_score + dana.engagement_score + 15)
    assert page.locator("#account-score").inner_text() == str(expected)
    assert page.locator("#open-pipeline").inner_text() == "12,000"
    assert page.locator("#company-leads tbody tr").count() == 2
    assert page.locator("#engagement-weeks .week").count() == 12
    shot(page, "accounts-02-company")

    page.locator("#company-leads").get_by_role("link", name="Dana Kim").click()
    page.wait_for_url(f"**/leads/{dana.pk}/")
    assert page.locator("#company-link").inner_text() == "Northwind Traders"


def test_a_marketer_merges_a_duplicate_from_the_lead_page(page, live_server, marketer, shot):
    survivor = LeadFactory(email="lee@firm.example", first_name="Lee", last_name="Park", title="CTO", tags=["vip"])
    duplicate = LeadFactory(
        email="lee+events@firm.example", first_name="Lee", last_name="Park", title="Chief Technology Officer",
        city="Berlin", tags=["event"],
    )  # fmt: skip
    interaction_record(lead=duplicate.pk, type="webinar_attended")
    base = live_server.url
    log_in(page, base, "maya")

    page.goto(f"{base}/leads/{survivor.pk}/")
    page.click("#merge-button")
    page.wait_for_url(f"**/leads/{survivor.pk}/merge/")
    page.get_by_role("link", name="Lee Park", exact=True).click()  # the candidate found by the email variant
    page.wait_for_url(f"**/merge/?duplicate={duplicate.pk}")
    assert page.locator('input[name="field_title"][value="duplicate"]').is_checked()  # the fuller title
    page.check('input[name="field_title"][value="survivor"]')  # but the marketer keeps "CTO"
    shot(page, "accounts-03-merge-preview")
    page.click("#merge-submit")
    page.wait_for_url(f"**/leads/{survivor.pk}/")

    assert "Merged lee+events@firm.example" in page.locator(".flash").inner_text()
    assert sorted(page.locator("#lead-tags .chip a").all_inner_texts()) == ["event", "vip"]
    shot(page, "accounts-04-merged-lead")
    survivor.refresh_from_db()
    assert survivor.title == "CTO" and survivor.city == "Berlin"
    assert not Lead.objects.filter(pk=duplicate.pk).exists()
    assert Interaction.objects.filter(lead=survivor, type="webinar_attended").count() == 1
    assert LeadAlias.objects.get(email="lee+events@firm.example").lead_id == survivor.pk

"""A marketer saves the leads list's filters as a segment and sees its live count; then builds
a behaviour segment with the condition builder. End to end in Chromium."""

import pytest

from leads.models import Segment
from tests.browser.conftest import log_in
from tests.factories import InteractionFactory, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_marketer_saves_the_list_filters_as_a_segment_and_sees_its_count(page, live_server, marketer, shot):
    for i in range(3):
        LeadFactory(email=f"hot{i}@acme.example", stage="mql", score=70 + i, source="webinar")
    LeadFactory(email="cold@acme.example", stage="mql", score=10, source="webinar")
    LeadFactory(email="other@acme.example", stage="visitor", score=90, source="website")
    base = live_server.url
    log_in(page, base, "maya")

    page.goto(f"{base}/leads/")
    page.select_option("#f-stage", "mql")
    page.fill('input[name="score_min"]', "50")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/leads/?*stage=mql*")
    assert page.locator("#leads-table tbody tr").count() == 3
    page.fill("#segment-name", "Hot MQLs")
    shot(page, "20-leads-save-as-segment")
    page.get_by_role("button", name="Save as segment").click()

    segment = Segment.objects.get(name="Hot MQLs")
    page.wait_for_url(f"**/segments/{segment.pk}/")
    assert page.locator(".flash").get_by_text("Segment “Hot MQLs” saved: 3 leads now.").is_visible()
    assert page.locator("h1").inner_text() == "Hot MQLs"
    assert page.locator("#leads-table tbody tr").count() == 3
    assert page.locator("#lead-count").inner_text() == "3 leads match"

    # The segments page counts live: a new hot MQL shows up at once.
    LeadFactory(email="hot9@acme.example", stage="mql", score=99)
    page.goto(f"{base}/segments/")
    row = page.locator(f'#segments-table tr[data-segment="{segment.pk}"]')
    assert row.locator(".segment-count").inner_text() == "4"
    shot(page, "21-segments-list")

    # The leads list's segment picker filters by it.
    page.goto(f"{base}/leads/")
    page.select_option("#f-segment", label="Hot MQLs")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**/leads/?*segment={segment.pk}*")
    assert page.locator("#leads-table tbody tr").count() == 4
    href = page.locator("#export-csv").get_attribute("href")
    assert href.startswith("/leads/export.csv?") and f"segment={segment.pk}" in href
    exported = page.request.get(f"{base}{href}").text().strip().splitlines()
    assert len(exported) == 1 + 4  # the header and the four leads on screen


def test_a_marketer_builds_a_behaviour_segment_in_the_builder(page, live_server, marketer, shot):
    twice = LeadFactory(email="twice@acme.example")
    for _ in range(2):
        InteractionFactory(lead=twice, type="page_view", properties={"url": "https://acme.example/pricing"})
    once = LeadFactory(email="once@acme.example")
    InteractionFactory(lead=once, type="page_view", properties={"url": "https://acme.example/pricing"})
    base = live_server.url
    log_in(page, base, "maya")

    page.goto(f"{base}/segments/new/")
    page.fill("#id_name", "Pricing fans")
    first = page.locator(".cond-row").nth(0)
    first.locator(".c-field").select_option("title")
    # Only the text operators are offered for a text field; a number field offers ranges.
    assert first.locator('.c-operator option[value="between"]').is_hidden()
    first.locator(".c-field").select_option("score")
    first.locator(".c-operator").select_option("between")
    assert first.locator(".c-value2").is_visible()
    first.locator(".c-value").fill("0")
    first.locator(".c-value2").fill("100")

    page.get_by_role("button", name="+ Add a condition").click()
    second = page.locator(".cond-row").nth(1)
    second.locator(".c-type").select_option("behaviour")
    assert second.locator('[data-part="field"]').is_hidden()
    second.locator(".c-behaviour").select_option("page_view")
    second.locator(".c-property").fill("url")
    second.locator(".c-prop-operator").select_option("contains")
    second.locator(".c-prop-value").fill("/pricing")
    second.locator(".c-at-least").fill("2")
    second.locator(".c-within").fill("30")
    shot(page, "22-segment-builder")
    page.get_by_role("button", name="Save segment").click()

    segment = Segment.objects.get(name="Pricing fans")
    page.wait_for_url(f"**/segments/{segment.pk}/")
    assert segment.definition["conditions"][1] == {
        "behaviour": "page_view",
        "property": "url",
        "operator": "contains",
        "value": "/pricing",
        "at_least": 2,
        "within_days": 30,
    }
    emails = page.locator("#leads-table tbody tr").all_inner_texts()
    assert len(emails) == 1 and "twice@acme.example" in emails[0]
    shot(page, "23-segment-page")

"""An admin erases a person from the lead page, then manages the suppression list, in Chromium."""

import pytest

from leads.models import Lead, Suppression
from leads.services import suppressed_emails
from tests.browser.conftest import log_in
from tests.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_admin_erases_a_person_and_manages_the_suppression_list(page, live_server, admin_user, shot):
    lead = LeadFactory(email="ivy.erase@acme.example", first_name="Ivy", last_name="Erase", phone="+44 20 7946 0000")
    log_in(page, live_server.url, admin_user.username)

    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    assert page.locator("#lead-privacy").is_visible()
    with page.expect_download() as download:
        page.click("#export-person")
    assert download.value.suggested_filename == f"lead-{lead.pk}-export.json"

    page.click("#erase-person summary")
    shot(page, "privacy-erase-confirmation")
    # The browser itself refuses the form until the confirmation is ticked.
    page.click("#erase-person button[type=submit]")
    assert Lead.objects.get(pk=lead.pk).erased_at is None
    page.check("#erase-person input[name=confirm]")
    page.click("#erase-person button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "was erased" in page.content()
    assert page.locator("#lead-name").inner_text() == f"erased-{lead.pk}@erased.invalid"
    assert page.locator("#erase-person").count() == 0
    shot(page, "privacy-erased-lead")

    page.click("nav >> text=Suppressions")
    assert "(erased person)" in page.locator("#suppressions-table").inner_text()
    page.fill("#id_email", "Complainer@Example.com")
    page.select_option("#id_reason", "complaint")
    page.click("#suppression-add button[type=submit]")
    page.wait_for_load_state("networkidle")
    table = page.locator("#suppressions-table").inner_text()
    assert "c***@example.com" in table and "Spam complaint" in table
    shot(page, "privacy-suppressions")
    assert suppressed_emails(["complainer@example.com"]) == {"complainer@example.com"}

    page.locator("#suppressions-table tr", has_text="c***@example.com").locator("button").click()
    page.wait_for_load_state("networkidle")
    assert "c***@example.com" not in page.locator("#suppressions-table").inner_text()
    assert suppressed_emails(["complainer@example.com"]) == set()
    assert Suppression.objects.filter(reason="erased").count() == 1

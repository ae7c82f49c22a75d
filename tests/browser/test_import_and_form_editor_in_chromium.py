"""A marketer imports a trade-show list and edits a form with the live snippet preview, in Chromium."""

import pytest

from leads import imports, tasks
from leads.models import Form, ImportJob, Lead
from tests.browser.conftest import log_in
from tests.factories import CompanyFactory, FormFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EXPO_CSV = (
    "Email,First Name,Last Name,Job Title,Company,Badge\n"
    "ann@northwind.example,Ann,Lee,CTO,Northwind,A-17\n"
    "broken-address,Bob,Roe,,,B-2\n"
    "dora@globex.example,Dora,Ek,VP Sales,Globex,C-9\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_a_marketer_imports_a_trade_show_list(page, live_server, marketer, shot, monkeypatch):
    globex = CompanyFactory(domain="globex.example", name="Globex")
    base = live_server.url
    log_in(page, base, "maya")

    page.get_by_role("link", name="Import").click()
    page.wait_for_url(f"{base}/imports/")
    page.set_input_files("#id_file", files=[{"name": "expo.csv", "mimeType": "text/csv", "buffer": EXPO_CSV.encode()}])
    page.get_by_role("button", name="Upload and map columns").click()
    page.wait_for_url("**/imports/*/map/")

    # The auto-mapping chose the fields named like columns; the first rows are shown beside them.
    table = page.locator("#mapping-table")
    assert table.get_by_text("ann@northwind.example").is_visible()
    assert page.locator("#id_col_0").input_value() == "email"
    assert page.locator("#id_col_3").input_value() == "title"
    page.select_option("#id_col_5", value="custom:badge")
    page.fill("#id_source", "Berlin Expo 2026")
    page.select_option("#id_channel", value="event")
    page.fill("#id_campaign", "expo-2026")
    shot(page, "10-import-mapping")

    # Dry run: counts and the bad row, nothing written.
    page.locator("#dry-run").click()
    page.locator("#dry-run-result").wait_for()
    assert page.locator('#dry-run-result [data-count="create"]').inner_text() == "2"
    assert page.locator('#dry-run-result [data-count="errors"]').inner_text() == "1"
    assert page.locator("#dry-run-errors").get_by_text("broken-address", exact=True).is_visible()
    assert Lead.objects.count() == 0
    shot(page, "11-import-dry-run")

    # Run: the worker is held back so the page shows the job waiting and polls its status.
    monkeypatch.setattr(tasks.import_run_job, "apply_async", lambda *args, **kwargs: None)
    page.locator("#run-import").click()
    page.wait_for_url("**/imports/*/")
    page.locator("#import-status[data-status=pending]").wait_for()
    job = ImportJob.objects.get()
    imports.import_run(job_id=job.pk)  # the worker's turn
    page.locator("#import-status[data-status=done]").wait_for()
    assert page.locator('#import-status [data-count="created"]').inner_text() == "2"
    assert page.locator('#import-status [data-count="errors"]').inner_text() == "1"
    shot(page, "12-import-done")

    ann = Lead.objects.get(email="ann@northwind.example")
    assert (ann.source, ann.channel, ann.utm_campaign, ann.custom_fields) == (
        "Berlin Expo 2026",
        "event",
        "expo-2026",
        {"badge": "A-17"},
    )
    assert Lead.objects.get(email="dora@globex.example").company_id == globex.pk

    with page.expect_download() as download:
        page.locator("#error-report").click()
    report = download.value.path().read_text()
    assert report.splitlines()[0] == "row,line,email,error" and "broken-address" in report


def test_a_marketer_edits_a_form_watching_the_snippet_change(page, live_server, marketer, shot):
    FormFactory(slug="contact", name="Contact us", honeypot_field="website", success_message="Thank you!")
    base = live_server.url
    log_in(page, base, "maya")
    page.goto(f"{base}/forms/contact/")
    page.get_by_role("link", name="Edit settings").click()
    page.wait_for_url(f"{base}/forms/contact/edit/")
    snippet = page.locator("#snippet")
    assert 'name="website"' in snippet.inner_text()

    # The preview follows what is typed, before anything is saved.
    page.fill("#id_honeypot_field", "fax_number")
    page.wait_for_function("document.querySelector('#snippet').textContent.includes('name=\"fax_number\"')")
    page.fill("#id_success_message", "See you at booth 12!")
    page.wait_for_function("document.querySelector('#snippet').textContent.includes('See you at booth 12!')")
    page.fill("#id_redirect_url", "https://www.example.com/thanks")
    page.wait_for_function("document.querySelector('#snippet').textContent.includes('window.location.href')")
    assert Form.objects.get(slug="contact").honeypot_field == "website"
    shot(page, "13-form-editor-preview")

    # A bad origin is refused with its line named; nothing is saved.
    page.fill("#id_allowed_origins_text", "https://www.example.com\nexample.org/landing")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_text("Line 2: “example.org/landing” is not an origin").is_visible()
    assert Form.objects.get(slug="contact").allowed_origins == []

    page.fill("#id_allowed_origins_text", "https://www.example.com\nhttps://example.org")
    page.fill("#id_channel_weight", "20")
    page.check("#id_overwrite_profile")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url(f"{base}/forms/contact/")
    assert page.locator(".flash").get_by_text("saved").is_visible()
    form = Form.objects.get(slug="contact")
    assert form.allowed_origins == ["https://example.org", "https://www.example.com"]
    assert (form.honeypot_field, form.success_message, form.redirect_url) == (
        "fax_number",
        "See you at booth 12!",
        "https://www.example.com/thanks",
    )
    assert (form.channel_weight, form.overwrite_profile) == (20, True)

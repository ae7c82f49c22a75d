"""The lead page in Chromium: a marketer edits the profile (refused, then saved), logs a note and
a call, and reads the score chart."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from leads import services
from leads.models import Interaction, Lead
from scoring.models import ScoreContribution
from tests.browser.conftest import log_in
from tests.factories import CompanyFactory, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_marketer_edits_the_profile_logs_a_note_and_reads_the_score_chart(page, live_server, marketer, shot):
    lead = LeadFactory(first_name="Dana", last_name="Scully", title="", company=CompanyFactory(name="Umbrella"))
    now = timezone.now()
    for days, kind in ((6, "demo_request"), (3, "webinar_attended"), (1, "page_view")):
        services.interaction_record(
            lead=lead.pk, type=kind, occurred_at=now - timedelta(days=days), properties={"url": "https://x/pricing"}
        )
    base = live_server.url
    log_in(page, base, "maya")
    page.goto(f"{base}/leads/{lead.pk}/")

    # The chart: one dot per instant the ledger gave points, the last one at the ledger's total.
    dots = page.locator("#score-chart circle.chart-point")
    instants = ScoreContribution.objects.filter(lead=lead).values("at").distinct().count()
    assert dots.count() == instants >= 3
    ledger_total = sum(ScoreContribution.objects.filter(lead=lead).values_list("points", flat=True))
    assert float(dots.last.get_attribute("data-total")) == pytest.approx(ledger_total)
    assert page.locator("#score-chart svg polyline").is_visible()

    # A refused edit keeps the form open with the message next to the field.
    page.locator("#profile-edit summary").click()
    page.fill("#id_profile-email", "not-an-email")
    page.fill("#id_profile-title", "VP Engineering")
    page.click("#profile-form button[type=submit]")
    assert page.locator("#id_profile-email-errors").is_visible()
    assert Lead.objects.get(pk=lead.pk).title == ""
    shot(page, "10-lead-profile-refused")

    # Corrected, it is saved and shown.
    page.fill("#id_profile-email", "dana@umbrella.example")
    page.click("#profile-form button[type=submit]")
    page.wait_for_url(f"**/leads/{lead.pk}/")
    assert "Profile saved." in page.content()
    assert page.locator("#profile-title").is_visible()
    stored = Lead.objects.get(pk=lead.pk)
    assert (stored.title, stored.email) == ("VP Engineering", "dana@umbrella.example")

    # A note and a call, shown in the timeline.
    page.select_option("#id_activity-kind", "note")
    page.fill("#id_activity-text", "Wants SSO before signing.")
    page.click("#activity-form button[type=submit]")
    page.wait_for_url(f"**/leads/{lead.pk}/")
    page.select_option("#id_activity-kind", "call")
    page.select_option("#id_activity-outcome", "connected")
    page.fill("#id_activity-duration_minutes", "20")
    page.click("#activity-form button[type=submit]")
    page.wait_for_url(f"**/leads/{lead.pk}/")
    timeline = page.locator("#timeline").inner_text()
    assert "Wants SSO before signing." in timeline
    assert re.search(r"Call\s+by maya · Connected · 20 min", timeline)
    assert set(Interaction.objects.filter(lead=lead, type__in=["note", "call"]).values_list("type", flat=True)) == {
        "note",
        "call",
    }
    shot(page, "11-lead-page-note-and-chart")

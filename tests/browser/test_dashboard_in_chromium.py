"""What a marketer and a sales rep do in the browser, end to end in Chromium."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads import services
from leads.models import Lead, Opportunity, StageTransition
from nurturing import services as nurture
from nurturing.models import Enrollment
from scoring.models import ScoringRule
from tests.browser.conftest import PHONE, log_in
from tests.dashboard.conftest import walk
from tests.factories import CompanyFactory, FormFactory, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _seed_marketing_world() -> Lead:
    start = timezone.now() - timedelta(days=20)
    form = FormFactory(name="Demo request", slug="demo-request")
    leads = [
        LeadFactory(
            created_at=start, source="webinar" if i < 4 else "website", first_form=form, company=CompanyFactory()
        )
        for i in range(10)
    ]
    walk(leads[0], ["mql", "sal", "sql", "customer"], start=start + timedelta(days=1))
    walk(leads[1], ["mql", "sal", "sql"], start=start + timedelta(days=1))
    walk(leads[2], ["mql", "sal"], start=start + timedelta(days=2))
    walk(leads[3], ["mql", "sal"], start=start + timedelta(days=2))
    walk(leads[4], ["mql"], start=start + timedelta(days=3))
    walk(leads[5], ["mql", "recycled"], start=start + timedelta(days=3))
    dana = leads[4]
    Lead.objects.filter(pk=dana.pk).update(first_name="Dana", last_name="Scully", title="VP Marketing")
    services.interaction_record(lead=dana.pk, type="demo_request", properties={"title": "Book a demo"})
    services.interaction_record(lead=dana.pk, type="page_view", properties={"url": "https://acme.example/pricing"})
    nurture.sequence_create(
        data={
            "name": "Recycled: back in 90 days",
            "active": True,
            "enroll_on": {"kind": "stage_entered", "stage": "recycled"},
            "steps": [
                {
                    "kind": "email",
                    "subject": "{{ lead.first_name }}, the 2026 benchmark",
                    "body": '<p>Hi {{ lead.first_name }}, <a href="https://acme.example/guide">the guide</a>.</p>',
                },
                {"kind": "wait", "days": 3},
                {"kind": "email", "subject": "Ready for a demo?", "body": "<p>Pick a slot.</p>"},
            ],
            "goals": [{"interaction_type": "demo_request"}],
        }
    )
    dana.refresh_from_db()
    return dana


def test_a_marketer_reads_the_funnel_opens_a_lead_and_edits_a_rule(page, live_server, marketer, shot):
    dana = _seed_marketing_world()
    base = live_server.url
    log_in(page, base, "maya")

    # The funnel with the seeded history.
    assert page.url == f"{base}/"
    kpi = page.locator('[data-stage="mql"] a.value')
    assert kpi.inner_text() == "6"
    assert page.locator('[data-stage="customer"] a.value').inner_text() == "1"
    assert page.locator("#funnel").get_by_text("66.7%").is_visible()
    shot(page, "01-marketer-funnel")

    # Every number leads to the leads behind it.
    kpi.click()
    page.wait_for_url("**/leads/?entered=mql*")
    assert page.locator("#leads-table tbody tr").count() == 6
    shot(page, "02-marketer-leads-list")

    # The lead's score, explained rule by rule.
    page.get_by_role("link", name="Dana Scully").click()
    page.wait_for_url(f"**/leads/{dana.pk}/")
    assert page.locator("#score-rules td", has_text="Requested a demo").first.is_visible()
    assert page.locator("#score-total").inner_text() == str(dana.score)
    shot(page, "03-marketer-lead-detail")

    # Enrol her in a sequence from her page (the Sequences card posts to the sequences app).
    sequences = page.locator("#lead-sequences")
    assert sequences.get_by_text("Not enrolled in any sequence.").is_visible()
    sequences.get_by_text("Enrol in a sequence…").click()
    sequences.locator("#enroll-seq").select_option(label="Recycled: back in 90 days")
    sequences.get_by_role("button", name="Enrol").click()
    page.wait_for_url(f"**/leads/{dana.pk}/")
    assert page.locator(".flash").get_by_text("Enrolled in the sequence.").is_visible()
    assert page.locator("#lead-sequences").get_by_role("link", name="Recycled: back in 90 days").is_visible()
    assert Enrollment.objects.filter(lead=dana, sequence__name="Recycled: back in 90 days").count() == 1

    # Enrol two visitors at once from the list's bulk bar: the sequence picker and Enrol show
    # for "Enrol in sequence", the reason and Apply for the other actions.
    visitors = list(Lead.objects.filter(stage="visitor").order_by("pk")[:2])
    page.goto(f"{base}/leads/?stage=visitor")
    for lead in visitors:
        page.get_by_label(f"Select {lead.email}").check()
    assert page.locator("#selected-count").inner_text() == "2"
    page.select_option("#bulk-action", "disqualify")
    assert page.locator("#bulk-reason").is_visible() and page.locator("#bulk-apply").is_visible()
    assert page.locator("#bulk-sequence").is_hidden() and page.locator("#bulk-enroll").is_hidden()
    page.select_option("#bulk-action", "enroll")
    assert page.locator("#bulk-reason").is_hidden() and page.locator("#bulk-apply").is_hidden()
    page.select_option("#bulk-sequence", label="Recycled: back in 90 days")
    shot(page, "03a-marketer-bulk-enrol")
    page.locator("#bulk-enroll").click()
    page.wait_for_url("**/leads/?stage=visitor")
    assert page.locator(".flash").get_by_text("Enrol in sequence: done for 2 lead(s).").is_visible()
    assert set(Enrollment.objects.filter(lead__in=visitors).values_list("lead_id", flat=True)) == {
        lead.pk for lead in visitors
    }

    # Edit a rule; the recompute runs and the page shows it finished.
    page.goto(f"{base}/scoring/")
    page.locator("#engagement-rules").get_by_role("link", name="Requested a demo").click()
    page.fill("#id_points", "45")
    page.get_by_role("button", name="Save rule").click()
    page.wait_for_url(f"{base}/scoring/")
    page.locator("#recompute[data-status=done]").wait_for()
    assert "Recompute finished" in page.locator("#recompute").inner_text()
    shot(page, "04-marketer-scoring")
    assert ScoringRule.objects.get(name="Requested a demo").points == 45
    dana.refresh_from_db()
    assert dana.engagement_points >= 45

    # The rule editor shows the API's own validation message.
    page.goto(f"{base}/scoring/rules/new/")
    page.fill("#id_name", "Broken")
    page.select_option("#id_source", "profile")
    page.select_option("#id_operator", "gte")
    page.fill("#id_points", "5")
    page.get_by_role("button", name="Create rule").click()
    assert page.get_by_text("A profile rule needs a field.").is_visible()
    shot(page, "05-marketer-rule-editor-errors")

    # Sequences with a rendered preview, and a form's snippet.
    page.goto(f"{base}/sequences/")
    shot(page, "06-marketer-sequences")
    page.get_by_role("link", name="Recycled: back in 90 days").click()
    page.locator("#preview-result iframe").wait_for()
    assert "the 2026 benchmark" in page.locator("#preview-result .subject").inner_text()
    shot(page, "07-marketer-sequence-detail")
    page.get_by_role("link", name="Edit sequence").click()
    assert page.locator("#steps .step-row").count() == 3
    shot(page, "08-marketer-sequence-editor")
    page.goto(f"{base}/forms/demo-request/")
    assert "/api/v1/forms/demo-request/submit/" in page.locator("#snippet").inner_text()
    shot(page, "09-marketer-form-snippet")


def _mql_for(rep, first_name: str, *, due_in_hours: float) -> Lead:
    lead = LeadFactory(
        first_name=first_name, last_name="Lee", company=CompanyFactory(), source="webinar", channel="event"
    )
    services.lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=rep, reason="Score 68 crossed 60")
    services.interaction_record(lead=lead.pk, type="demo_request", properties={"title": "Book a demo"})
    Lead.objects.filter(pk=lead.pk).update(sla_due_at=timezone.now() + timedelta(hours=due_in_hours))
    return lead


def test_a_rep_accepts_rejects_and_qualifies_from_the_queue(page, live_server, sales_rep, shot):
    late = _mql_for(sales_rep, "Avery", due_in_hours=-1)
    fresh = _mql_for(sales_rep, "Blake", due_in_hours=6)
    sal = _mql_for(sales_rep, "Casey", due_in_hours=6)
    services.lead_accept(lead=sal.pk, actor=sales_rep)
    base = live_server.url
    log_in(page, base, "sam")

    assert page.url == f"{base}/queue/"
    cards = page.locator("#queue .lead-card")
    assert cards.count() == 2
    assert "breached" in cards.first.get_attribute("class")
    shot(page, "10-rep-queue")

    # Accept in one click.
    page.locator(f"#lead-card-{late.pk}").get_by_role("button", name="Accept").click()
    page.locator(f"#lead-card-{late.pk}.card-done").wait_for()
    # Reject in two: open the reasons, pick one (the note is optional).
    card = page.locator(f"#lead-card-{fresh.pk}")
    card.get_by_text("Reject…").click()
    card.locator("input[name=note]").fill("Budget comes in Q3")
    card.get_by_role("button", name="No budget yet").click()
    page.locator(f"#lead-card-{fresh.pk}.card-done").wait_for()
    shot(page, "11-rep-queue-after")
    late.refresh_from_db()
    fresh.refresh_from_db()
    assert late.stage == "sal" and fresh.stage == "recycled"
    rejection = StageTransition.objects.get(lead=fresh, to_stage="recycled")
    assert (rejection.reason_code, rejection.reason) == ("no_budget_yet", "Budget comes in Q3")

    # Qualify a SAL into an SQL from the pipeline.
    page.get_by_role("link", name="Pipeline", exact=True).click()
    card = page.locator(f"#lead-card-{sal.pk}")
    card.get_by_text("Qualify…").click()
    card.get_by_label("Buying cycle").fill("Replacing spreadsheets this quarter")
    card.get_by_label("Who has influence").fill("VP Sales, signs off")
    card.get_by_label("Timeframe").fill("Within 2 months")
    card.get_by_label("Opportunity size").fill("18000")
    card.get_by_label("Next step (they agreed to it)").fill("Demo with the team on Tuesday")
    shot(page, "12-rep-pipeline-qualify")
    card.get_by_role("button", name="Create opportunity (SQL)").click()
    page.locator(f"#lead-card-{sal.pk}.card-done").wait_for()
    sal.refresh_from_db()
    assert sal.stage == "sql"
    assert Opportunity.objects.get(lead=sal).opportunity_size == 18000

    # The same pages on a phone.
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/pipeline/")
    shot(page, "13-rep-pipeline-phone")
    _mql_for(sales_rep, "Devon", due_in_hours=1)
    page.goto(f"{base}/queue/")
    shot(page, "14-rep-queue-phone")


def test_a_rep_gets_the_403_page_on_scoring(page, live_server, sales_rep, shot):
    log_in(page, live_server.url, "sam")
    response = page.goto(f"{live_server.url}/scoring/")
    assert response.status == 403
    assert page.get_by_role("heading", name="403").is_visible()
    assert page.get_by_role("link", name="Scoring").count() == 0
    shot(page, "15-rep-403-scoring")

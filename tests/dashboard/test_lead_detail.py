from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import services
from leads.models import Lead, Opportunity, StageTransition
from tests.dashboard.conftest import walk
from tests.factories import CompanyFactory, InteractionFactory, LeadFactory


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_the_detail_page_explains_the_score_rule_by_rule(marketer_web):
    lead = LeadFactory(first_name="Dana", company=CompanyFactory(name="Umbrella"))
    services.interaction_record(lead=lead, type="demo_request", properties={"form": "demo"})
    body = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    breakdown = body[body.index('id="score-breakdown"') : body.index('aria-labelledby="timeline-title"')]
    assert "Requested a demo" in breakdown
    lead.refresh_from_db()
    assert lead.engagement_score > 0
    assert f'id="score-total">{lead.score}<' in body
    assert "Umbrella" in body


@pytest.mark.django_db
def test_the_detail_page_shows_every_cycle_of_the_stage_history_and_the_timeline(marketer_web):
    lead = LeadFactory(first_name="Eve")
    start = timezone.now() - timedelta(days=10)
    walk(lead, ["mql", "recycled"], start=start)
    walk(lead, ["mql", "sal"], start=start + timedelta(days=5), cycle=2)
    StageTransition.objects.filter(lead=lead, to_stage="recycled").update(
        reason_code="no_budget_yet", reason="Next year"
    )
    InteractionFactory(lead=lead, type="webinar_attended", properties={"title": "Scoring 101", "minutes": 45})
    body = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    history = body[body.index('id="stage-history"') :]
    assert "Cycle 1" in history and "Cycle 2" in history
    assert history.count("→") == 4 and "Next year" in history
    assert "Webinar attended" in body and "Scoring 101" in body


@pytest.mark.django_db
def test_the_detail_page_runs_the_same_queries_whatever_the_history(marketer_web, sales_rep):
    def build(n: int) -> Lead:
        lead = LeadFactory(owner=sales_rep, company=CompanyFactory())
        for i in range(n):
            InteractionFactory(lead=lead, type="page_view", properties={"url": f"https://acme.example/{i}"})
            services.interaction_record(lead=lead, type="demo_request")
        walk(lead, ["mql", "recycled"] * (n // 2), start=timezone.now() - timedelta(days=60))
        return lead

    small, big = build(5), build(30)
    assert count_queries(marketer_web, f"/leads/{small.pk}/") == count_queries(marketer_web, f"/leads/{big.pk}/")


@pytest.mark.django_db
def test_unknown_leads_are_a_styled_404(marketer_web):
    response = marketer_web.get("/leads/999999/")
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_rep_sees_accept_and_reject_only_on_their_own_mqls(rep_web, sales_rep, other_rep):
    mine = LeadFactory(owner=sales_rep)
    walk(mine, ["mql"], start=timezone.now())
    theirs = LeadFactory(owner=other_rep)
    walk(theirs, ["mql"], start=timezone.now())
    assert "/accept/" in rep_web.get(f"/leads/{mine.pk}/").content.decode()
    assert "/accept/" not in rep_web.get(f"/leads/{theirs.pk}/").content.decode()


@pytest.mark.django_db
def test_a_rep_acting_on_another_reps_lead_gets_the_services_refusal(rep_web, other_rep):
    theirs = LeadFactory(owner=other_rep)
    walk(theirs, ["mql"], start=timezone.now())
    response = rep_web.post(f"/leads/{theirs.pk}/accept/", follow=True)
    assert "Only the sales rep who owns this lead" in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.stage == "mql"


@pytest.mark.django_db
def test_a_marketer_marks_a_visitor_as_mql_with_a_reason(marketer_web, sales_rep):
    lead = LeadFactory()
    response = marketer_web.post(f"/leads/{lead.pk}/mark_mql/", {"reason": "Met at the booth"})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.stage == "mql" and lead.owner == sales_rep
    assert StageTransition.objects.get(lead=lead).reason == "Met at the booth"


@pytest.mark.django_db
def test_marking_mql_without_a_reason_changes_nothing(marketer_web):
    lead = LeadFactory()
    response = marketer_web.post(f"/leads/{lead.pk}/mark_mql/", {"reason": ""}, follow=True)
    assert "Give a reason." in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == "visitor" and not StageTransition.objects.filter(lead=lead).exists()


@pytest.mark.django_db
def test_a_marketer_cannot_accept_a_lead(marketer_web, sales_rep):
    lead = LeadFactory(owner=sales_rep)
    walk(lead, ["mql"], start=timezone.now())
    response = marketer_web.post(f"/leads/{lead.pk}/accept/", follow=True)
    assert "Only" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == "mql"


@pytest.mark.django_db
def test_closing_a_lost_deal_needs_a_reason_and_records_it(rep_web, sales_rep):
    lead = LeadFactory(owner=sales_rep)
    walk(lead, ["mql"], start=timezone.now() - timedelta(days=3))
    services.lead_accept(lead=lead.pk, actor=sales_rep)
    services.lead_qualify(
        lead=lead.pk,
        actor=sales_rep,
        buying_cycle="Q3",
        influencer="CMO",
        timeframe="3 months",
        opportunity_size="12000",
        next_step="Demo",
    )
    response = rep_web.post(f"/leads/{lead.pk}/close/", {"won": "0", "reason": ""}, follow=True)
    assert "Say why the deal was lost." in response.content.decode()
    rep_web.post(f"/leads/{lead.pk}/close/", {"won": "0", "reason": "price", "note": "Too expensive"})
    lead.refresh_from_db()
    assert lead.stage == "lost"
    assert Opportunity.objects.get(lead=lead).status == "lost"


@pytest.mark.django_db
def test_bulk_disqualify_changes_each_selected_lead_and_reports_failures(marketer_web):
    a, b = LeadFactory(), LeadFactory()
    done = LeadFactory()
    walk(done, ["disqualified"], start=timezone.now())
    response = marketer_web.post(
        "/leads/bulk/", {"action": "disqualify", "ids": [a.pk, b.pk, done.pk], "reason": "Spam list"}, follow=True
    )
    body = response.content.decode()
    assert "done for 2 lead(s)" in body and "1 lead(s) not changed" in body
    assert set(Lead.objects.filter(stage="disqualified").values_list("pk", flat=True)) == {a.pk, b.pk, done.pk}


@pytest.mark.django_db
def test_bulk_mark_mql_routes_every_lead_in_one_move_and_reports_the_ones_that_cannot(
    marketer_web, sales_rep, other_rep
):
    def bulk(leads):
        with CaptureQueriesContext(connection) as ctx:
            response = marketer_web.post(
                "/leads/bulk/", {"action": "mark_mql", "ids": [x.pk for x in leads], "reason": "Booth"}, follow=True
            )
        return response.content.decode(), len(ctx.captured_queries)

    customer = LeadFactory()
    walk(customer, ["mql", "sal", "sql", "customer"], start=timezone.now())
    two = [LeadFactory(), LeadFactory()]
    body, few = bulk([*two, customer])
    assert "done for 2 lead(s)" in body and "1 lead(s) not changed" in body and "cannot move any further" in body
    moved = Lead.objects.filter(pk__in=[x.pk for x in two])
    assert {(x.stage, x.owner_id is not None, x.sla_due_at is not None) for x in moved} == {("mql", True, True)}
    assert {x.owner_id for x in moved} == {sales_rep.pk, other_rep.pk}  # round-robin across the batch
    transition = StageTransition.objects.filter(lead=two[0], to_stage="mql").get()
    assert (transition.cause, transition.reason, transition.details["manual"]) == ("user", "Booth", True)
    _, many = bulk([LeadFactory() for _ in range(12)])
    assert many <= few  # one set-based move, whatever the number of leads


@pytest.mark.django_db
def test_bulk_actions_are_for_marketers_only(rep_web):
    lead = LeadFactory()
    assert rep_web.post("/leads/bulk/", {"action": "disqualify", "ids": [lead.pk], "reason": "x"}).status_code == 403
    lead.refresh_from_db()
    assert lead.stage == "visitor"

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import services
from leads.models import Lead, Opportunity, StageTransition
from tests.dashboard.predictive_model import activate_model
from tests.factories import CompanyFactory, InteractionFactory, LeadFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def queued(rep, *, due_in_hours: float, **fields) -> Lead:
    """An MQL routed to ``rep`` through the stage service, with a chosen SLA deadline."""
    lead = LeadFactory(company=CompanyFactory(), **fields)
    services.lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=rep, reason="Score 72 crossed 60")
    Lead.objects.filter(pk=lead.pk).update(sla_due_at=timezone.now() + timedelta(hours=due_in_hours))
    return lead


def card_ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="lead-card-(\d+)" data-lead', body)]


@pytest.mark.django_db
def test_the_queue_lists_my_mqls_oldest_sla_first_with_breaches_highlighted(rep_web, sales_rep, other_rep):
    later = queued(sales_rep, due_in_hours=20)
    late = queued(sales_rep, due_in_hours=-2, first_name="Late")
    soon = queued(sales_rep, due_in_hours=1)
    queued(other_rep, due_in_hours=1)
    body = rep_web.get("/queue/").content.decode()
    assert card_ids(body) == [late.pk, soon.pk, later.pk]
    assert re.search(rf'class="lead-card breached" id="lead-card-{late.pk}"', body)
    assert "overdue by 2h" in body and "1 past SLA" in body


@pytest.mark.django_db
def test_a_queue_card_shows_why_the_lead_qualified(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=5, source="webinar", channel="event")
    services.interaction_record(lead=lead, type="demo_request", properties={"title": "Book a demo"})
    InteractionFactory(lead=lead, type="webinar_attended", properties={"title": "Scoring 101", "minutes": 50})
    body = rep_web.get("/queue/").content.decode()
    card = body[body.index(f'id="lead-card-{lead.pk}"') :]
    assert "Requested a demo" in card  # the rule and its points
    assert "Event" in card and "webinar" in card  # the channel
    assert "Webinar attended" in card and "Scoring 101" in card  # key actions


@pytest.mark.django_db
def test_an_empty_queue_says_what_to_do(rep_web):
    body = rep_web.get("/queue/").content.decode()
    assert "Your queue is clear" in body and "/pipeline/" in body


@pytest.mark.django_db
def test_accepting_from_the_queue_is_one_htmx_post(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    response = rep_web.post(f"/leads/{lead.pk}/accept/", {"fragment": "card"}, **HTMX)
    assert response.status_code == 200
    assert "Accepted" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == "sal" and lead.first_response_at is not None
    assert StageTransition.objects.filter(lead=lead, to_stage="sal", actor=sales_rep).exists()


@pytest.mark.django_db
def test_rejecting_from_the_queue_records_the_reason_and_the_note(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    response = rep_web.post(
        f"/leads/{lead.pk}/reject/", {"fragment": "card", "reason": "no_budget_yet", "note": "Back in Q3"}, **HTMX
    )
    assert "Rejected" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == "recycled" and lead.owner is None
    transition = StageTransition.objects.get(lead=lead, to_stage="recycled")
    assert (transition.reason_code, transition.reason) == ("no_budget_yet", "Back in Q3")


@pytest.mark.django_db
def test_rejecting_without_a_reason_keeps_the_card_with_a_message(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    response = rep_web.post(f"/leads/{lead.pk}/reject/", {"fragment": "card", "note": "?"}, **HTMX)
    body = response.content.decode()
    assert f'id="lead-card-{lead.pk}"' in body and "Pick a reason." in body
    lead.refresh_from_db()
    assert lead.stage == "mql"


@pytest.mark.django_db
def test_accepting_a_lead_someone_else_already_answered_shows_the_conflict(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    services.lead_accept(lead=lead.pk, actor=sales_rep)
    body = rep_web.post(f"/leads/{lead.pk}/accept/", {"fragment": "card"}, **HTMX).content.decode()
    assert 'class="card-error"' in body and "SAL" in body


@pytest.mark.django_db
def test_the_queue_runs_the_same_queries_for_5_or_30_cards(rep_web, sales_rep, django_assert_num_queries):
    def add(n: int) -> None:
        for _ in range(n):
            lead = queued(sales_rep, due_in_hours=4)
            services.interaction_record(lead=lead, type="demo_request")
            InteractionFactory(lead=lead, type="content_download", properties={"title": "Guide"})

    add(5)
    with CaptureQueriesContext(connection) as ctx:
        rep_web.get("/queue/")
    small = len(ctx.captured_queries)
    add(25)
    # session, user, roles, the rep's away flag, the rep's MQLs, key actions (one windowed query),
    # qualifying transitions (one windowed query), rule totals for all cards,
    # the active predictive model (none here: no factors to read).
    with django_assert_num_queries(small):
        body = rep_web.get("/queue/").content.decode()
    # 30 waiting; the page shows the oldest 25 and says so.
    assert len(card_ids(body)) == 25 and "30 leads waiting" in body
    assert small <= 11


@pytest.mark.django_db
def test_qualifying_a_sal_from_the_pipeline_opens_an_opportunity(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    services.lead_accept(lead=lead.pk, actor=sales_rep)
    assert f'id="lead-card-{lead.pk}"' in rep_web.get("/pipeline/").content.decode()
    facts = {
        "fragment": "card",
        "buying_cycle": "Evaluating tools this quarter",
        "influencer": "VP Marketing",
        "timeframe": "Within 3 months",
        "opportunity_size": "24000",
        "next_step": "Demo on Tuesday",
    }
    response = rep_web.post(f"/leads/{lead.pk}/qualify/", facts, **HTMX)
    assert "Qualified" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == "sql"
    opportunity = Opportunity.objects.get(lead=lead)
    assert opportunity.opportunity_size == 24000 and opportunity.budget is None


@pytest.mark.django_db
def test_qualifying_with_a_missing_fact_redisplays_the_form_with_what_was_typed(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    services.lead_accept(lead=lead.pk, actor=sales_rep)
    response = rep_web.post(
        f"/leads/{lead.pk}/qualify/", {"fragment": "card", "buying_cycle": "Q3 project", "timeframe": "soon"}, **HTMX
    )
    body = response.content.decode()
    assert "This field is required." in body and 'value="Q3 project"' in body
    lead.refresh_from_db()
    assert lead.stage == "sal" and not Opportunity.objects.filter(lead=lead).exists()


@pytest.mark.django_db
def test_closing_won_from_the_pipeline_makes_a_customer(rep_web, sales_rep):
    lead = queued(sales_rep, due_in_hours=3)
    services.lead_accept(lead=lead.pk, actor=sales_rep)
    services.lead_qualify(
        lead=lead.pk,
        actor=sales_rep,
        buying_cycle="Q3",
        influencer="CMO",
        timeframe="3 months",
        opportunity_size="5000",
        next_step="Contract",
    )
    assert f'id="lead-card-{lead.pk}"' in rep_web.get("/pipeline/").content.decode()
    response = rep_web.post(f"/leads/{lead.pk}/close/", {"fragment": "card", "won": "1"}, **HTMX)
    assert "Closed" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == "customer"


@pytest.mark.django_db
def test_a_long_queue_shows_the_oldest_50_and_says_how_many_wait(rep_web, sales_rep, monkeypatch):
    from leads import dashboard

    monkeypatch.setattr(dashboard, "QUEUE_LIMIT", 3)
    monkeypatch.setattr(dashboard.queue_leads, "__kwdefaults__", {"limit": 3})
    leads = [queued(sales_rep, due_in_hours=h) for h in (5, -1, 3, 8)]
    body = rep_web.get("/queue/").content.decode()
    assert card_ids(body) == [leads[1].pk, leads[2].pk, leads[0].pk]
    assert "4 leads waiting" in body and "1 past SLA" in body and "showing the first 3" in body


@pytest.mark.django_db
def test_queue_cards_show_the_top_predictive_factors_in_the_same_queries_for_5_or_30_cards(
    rep_web, sales_rep, django_assert_num_queries
):
    activate_model({"count:demo_request": 1.5, "title_student": -2.0, "business_email": 0.5})

    def add(n: int) -> None:
        for _ in range(n):
            lead = queued(sales_rep, due_in_hours=4, title="Student")
            services.interaction_record(lead=lead, type="demo_request")

    add(5)
    with CaptureQueriesContext(connection) as ctx:
        body = rep_web.get("/queue/").content.decode()
    small = len(ctx.captured_queries)
    card = body[body.index('class="predicted"') :]
    card = card[: card.index("</div>")]
    assert re.findall(r'class="factor factor-(up|down)" data-feature="([^"]+)"', card) == [
        ("down", "title_student"),
        ("up", "count:demo_request"),
        ("up", "business_email"),
    ]
    add(25)
    # As without a model, plus the model's inputs for every card at once: profiles, interactions
    # grouped by type, stage history, the free-mail list.
    with django_assert_num_queries(small):
        rep_web.get("/queue/")
    assert small <= 15

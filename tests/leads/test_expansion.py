"""Service qualified leads: a customer who signals they want more becomes an expansion
opportunity in a rep's queue, counted apart in the funnel report, the stage history untouched."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leadfunnel.models import LeadAssignment
from leads import services
from leads.models import Lead, Opportunity, StageTransition
from tests.factories import LeadFactory


def customer(rep) -> Lead:
    lead = LeadFactory(title="CTO")
    services.lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=rep, reason="Score crossed")
    services.lead_accept(lead=lead.pk, actor=rep)
    services.lead_qualify(
        lead=lead.pk,
        actor=rep,
        buying_cycle="Now",
        influencer="CTO",
        timeframe="1 month",
        opportunity_size="5000",
        next_step="Contract",
    )
    services.lead_close(lead=lead.pk, actor=rep, won=True)
    lead.refresh_from_db()
    return lead


def web(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.django_db
def test_a_customer_reaching_the_seat_limit_lands_in_their_reps_queue_as_an_expansion(
    sales_client, marketer_client, sales_rep, marketer
):
    lead = customer(sales_rep)
    history_before = StageTransition.objects.filter(lead=lead).count()

    event = {"lead": lead.pk, "type": "product_usage", "properties": {"feature": "seats_limit_reached"}}
    assert sales_client.post("/api/v1/interactions/", event, format="json").status_code == 201

    expansion = Opportunity.objects.get(lead=lead, kind="expansion")
    assert expansion.status == "open" and expansion.signal == "product_usage with feature = seats_limit_reached"
    assignment = LeadAssignment.objects.get(lead=lead, cause="expansion")
    assert assignment.to_owner == sales_rep
    lead.refresh_from_db()
    assert lead.stage == "customer" and lead.owner == sales_rep
    assert StageTransition.objects.filter(lead=lead).count() == history_before  # the history stays truthful

    queue = web(sales_rep).get("/queue/").content.decode()
    assert f'id="expansion-card-{expansion.pk}" data-kind="expansion"' in queue
    assert "seats_limit_reached" in queue

    period = f"since={timezone.localdate() - timedelta(days=1)}&until={timezone.localdate() + timedelta(days=1)}"
    answer = marketer_client.get(f"/api/v1/funnel/?{period}")
    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert report["expansions"] == {"opened": 1, "won": 0, "lost": 0, "open": 1, "win_rate": None}
    assert report["totals"]["entries"]["customer"] == 1  # not counted as a second new customer
    cohort = marketer_client.get(f"/api/v1/funnel/?view=cohort&{period}").json()
    assert cohort["expansions"]["opened"] == 1
    funnel_page = web(marketer).get("/").content.decode()
    kpi = funnel_page[funnel_page.index('data-kpi="expansions"') :][:300]
    assert '<span class="value">1</span>' in kpi


@pytest.mark.django_db
def test_one_open_expansion_per_customer_and_only_customers_and_matching_signals(sales_client, sales_rep):
    lead = customer(sales_rep)
    prospect = LeadFactory()
    events = [
        {"lead": lead.pk, "type": "product_usage", "properties": {"feature": "reports"}},
        {"lead": prospect.pk, "type": "upgrade_interest", "properties": {}},
    ]
    assert sales_client.post("/api/v1/interactions/bulk/", events, format="json").json()["accepted"] == 2
    assert not Opportunity.objects.filter(kind="expansion").exists()

    more = [{"lead": lead.pk, "type": "upgrade_interest"}, {"lead": lead.pk, "type": "demo_request"}]
    sales_client.post("/api/v1/interactions/bulk/", more, format="json")
    sales_client.post("/api/v1/interactions/", {"lead": lead.pk, "type": "upgrade_interest"}, format="json")
    assert Opportunity.objects.filter(lead=lead, kind="expansion").count() == 1
    assert LeadAssignment.objects.filter(lead=lead, cause="expansion").count() == 1


@pytest.mark.django_db
def test_a_customer_whose_rep_left_goes_to_the_round_robin(sales_client, sales_rep, other_rep):
    lead = customer(sales_rep)
    sales_rep.is_active = False
    sales_rep.save(update_fields=["is_active"])
    services.interaction_record(lead=lead.pk, type="upgrade_interest")
    lead.refresh_from_db()
    assert lead.owner == other_rep
    assert LeadAssignment.objects.get(lead=lead, cause="expansion").from_owner == sales_rep


@pytest.mark.django_db
def test_the_rep_closes_an_expansion_from_the_queue_and_the_report_counts_it(
    sales_rep, other_rep, marketer_client, settings
):
    lead = customer(sales_rep)
    services.interaction_record(lead=lead.pk, type="demo_request")
    expansion = Opportunity.objects.get(lead=lead, kind="expansion")
    assert web(other_rep).post(f"/expansions/{expansion.pk}/close/", {"won": "1"}).status_code == 302
    expansion.refresh_from_db()
    assert expansion.status == "open"  # refused: not their customer
    web(sales_rep).post(f"/expansions/{expansion.pk}/close/", {"won": "0"})
    expansion.refresh_from_db()
    assert expansion.status == "open"  # refused: a lost expansion needs a reason
    web(sales_rep).post(f"/expansions/{expansion.pk}/close/", {"won": "1"})
    expansion.refresh_from_db()
    assert expansion.status == "won" and expansion.closed_at is not None
    settings.FUNNEL_CACHE_SECONDS = 0
    period = f"since={timezone.localdate() - timedelta(days=1)}&until={timezone.localdate() + timedelta(days=1)}"
    counts = marketer_client.get(f"/api/v1/funnel/?{period}").json()["expansions"]
    assert (counts["won"], counts["open"], counts["win_rate"]) == (1, 0, 1.0)


@pytest.mark.django_db
def test_the_signals_are_configurable(sales_rep, settings):
    settings.EXPANSION_SIGNALS = "webinar_attended:session=enterprise"
    lead = customer(sales_rep)
    services.interaction_record(lead=lead.pk, type="upgrade_interest")
    assert not Opportunity.objects.filter(kind="expansion").exists()
    services.interaction_record(lead=lead.pk, type="webinar_attended", properties={"session": "Enterprise"})
    assert Opportunity.objects.get(kind="expansion").signal == "webinar_attended with session = enterprise"


@pytest.mark.django_db
def test_an_expansion_handover_is_not_an_sla_assignment(sales_rep, marketer_client, settings):
    settings.FUNNEL_CACHE_SECONDS = 0
    period = f"since={timezone.localdate() - timedelta(days=1)}&until={timezone.localdate() + timedelta(days=1)}"
    lead = customer(sales_rep)
    before = marketer_client.get(f"/api/v1/funnel/?{period}").json()["sla"]["totals"]
    services.interaction_record(lead=lead.pk, type="upgrade_interest")
    after = marketer_client.get(f"/api/v1/funnel/?{period}").json()["sla"]["totals"]
    assert Opportunity.objects.filter(lead=lead, kind="expansion").exists()
    assert (after["assigned"], after["responded"], after["waiting"]) == (
        before["assigned"],
        before["responded"],
        before["waiting"],
    )

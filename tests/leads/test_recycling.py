"""Lost → nurturing: a lost deal goes back to marketing by its rep, or after a cooling-off period,
and its history says why it was lost."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leads import services, tasks
from leads.models import Lead, StageTransition
from tests.factories import LeadFactory


def web(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def lost_lead(rep, *, reason_code: str = "price", reason: str = "Too expensive this year", days_ago: int = 0) -> Lead:
    """A lead walked through the funnel by the services and lost by ``rep``."""
    lead = LeadFactory(title="CTO")
    services.lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=rep, reason="Score crossed")
    services.lead_accept(lead=lead.pk, actor=rep)
    services.lead_qualify(
        lead=lead.pk,
        actor=rep,
        buying_cycle="Q3 tooling review",
        influencer="CTO",
        timeframe="3 months",
        opportunity_size="12000",
        next_step="Proposal",
    )
    services.lead_close(lead=lead.pk, actor=rep, won=False, reason_code=reason_code, reason=reason)
    if days_ago:
        at = timezone.now() - timedelta(days=days_ago)
        Lead.objects.filter(pk=lead.pk).update(stage_changed_at=at)
        StageTransition.objects.filter(lead=lead, to_stage="lost").update(at=at)
    lead.refresh_from_db()
    return lead


@pytest.mark.django_db
def test_the_rep_recycles_a_lost_lead_through_the_api_and_the_loss_stays_in_its_history(sales_client, sales_rep):
    lead = lost_lead(sales_rep)
    response = sales_client.post(
        f"/api/v1/leads/{lead.pk}/recycle/", {"reason": "Budget opens in January"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["stage"] == "recycled"
    last = StageTransition.objects.filter(lead=lead).order_by("-at", "-id").first()
    assert (last.from_stage, last.to_stage, last.cause, last.actor) == ("lost", "recycled", "user", sales_rep)
    assert "lost (Price: Too expensive this year)" in last.reason and "Budget opens in January" in last.reason
    assert last.reason_code == "price"
    assert last.details["lost_reason"] == "Too expensive this year" and last.details["lost_reason_code"] == "price"
    lead.refresh_from_db()
    assert lead.stage == "recycled" and lead.owner_id is None


@pytest.mark.django_db
def test_recycling_is_refused_to_another_rep_without_a_reason_and_for_a_lead_that_is_not_lost(
    sales_client, other_rep_client, marketer_client, sales_rep
):
    lead = lost_lead(sales_rep)
    url = f"/api/v1/leads/{lead.pk}/recycle/"
    assert other_rep_client.post(url, {"reason": "mine now"}, format="json").status_code == 403
    assert marketer_client.post(url, {"reason": "x"}, format="json").status_code == 403
    missing = sales_client.post(url, {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    blank = sales_client.post(url, {"reason": "   "}, format="json")
    assert blank.status_code == 400
    lead.refresh_from_db()
    assert lead.stage == "lost" and not StageTransition.objects.filter(lead=lead, to_stage="recycled").exists()
    open_lead = LeadFactory(owner=sales_rep, stage="sal")
    assert (
        sales_client.post(f"/api/v1/leads/{open_lead.pk}/recycle/", {"reason": "x"}, format="json").status_code == 409
    )


@pytest.mark.django_db
def test_the_recycle_button_on_the_lead_page(sales_rep, other_rep):
    lead = lost_lead(sales_rep, reason_code="timing", reason="")
    mine = web(sales_rep)
    assert 'id="recycle-box"' in mine.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="recycle-box"' not in web(other_rep).get(f"/leads/{lead.pk}/").content.decode()
    response = mine.post(f"/leads/{lead.pk}/recycle/", {"reason": "New budget"})
    assert response.status_code == 302
    page = mine.get(f"/leads/{lead.pk}/").content.decode()
    assert "Sent back to marketing" in page
    history = page[page.index('id="stage-history"') :]
    assert "lost (Timing). New budget" in history
    lead.refresh_from_db()
    assert lead.stage == "recycled"


@pytest.mark.django_db
def test_the_cooling_off_task_recycles_leads_lost_long_enough_and_says_why(settings, sales_rep, marketer):
    settings.LOST_RECYCLE_AFTER_DAYS = 60
    old = lost_lead(sales_rep, reason_code="competitor", reason="Went with Initech", days_ago=61)
    recent = lost_lead(sales_rep, days_ago=10)

    assert tasks.lost_recycle() == 1
    assert tasks.lost_recycle() == 0  # safe to run twice

    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.stage, recent.stage) == ("recycled", "lost")
    move = StageTransition.objects.get(lead=old, to_stage="recycled")
    assert (move.cause, move.cause_ref, move.actor) == ("rule", "rule:lost_recycle_after_days", None)
    assert move.reason == "Back to marketing 60 days after the deal was lost (Chose a competitor: Went with Initech)."
    assert move.reason_code == "competitor" and move.details["after_days"] == 60

    # From recycled it can come back as an MQL, in a new cycle.
    services.lead_mark_mql(lead=old.pk, actor=marketer, reason="Asked for a demo again")
    old.refresh_from_db()
    assert old.stage == "mql" and old.cycle == 2


@pytest.mark.django_db
def test_the_cooling_off_rule_is_off_at_zero_days(settings, sales_rep):
    settings.LOST_RECYCLE_AFTER_DAYS = 0
    lead = lost_lead(sales_rep, days_ago=400)
    assert tasks.lost_recycle() == 0
    lead.refresh_from_db()
    assert lead.stage == "lost"


@pytest.mark.django_db
def test_the_cooling_off_task_moves_many_leads_in_one_stage_change(settings, sales_rep, django_assert_max_num_queries):
    settings.LOST_RECYCLE_AFTER_DAYS = 30
    leads = [lost_lead(sales_rep, days_ago=40) for _ in range(6)]
    # due leads, their losses, the stage change (lock, update, history, outbox), the empty last batch
    with django_assert_max_num_queries(12):
        assert services.leads_recycle_lost() == 6
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("stage", flat=True)) == {"recycled"}

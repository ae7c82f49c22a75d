"""The sales workflow over the API: mark-mql, accept, reject, qualify, close, disqualify."""

import pytest

from leadfunnel.models import OutboxMessage
from leads.models import Opportunity, SalesRepProfile, StageTransition
from leads.services import lead_change_stage
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

FACTS = {
    "buying_cycle": "Replacing their spreadsheet process this quarter",
    "influencer": "Head of Marketing, reports to the CMO who signs",
    "timeframe": "Q1 2027",
    "opportunity_size": "24000.00",
    "next_step": "Demo with the CMO on Tuesday",
}


def act(client, lead, action, body=None):
    return client.post(f"/api/v1/leads/{lead.pk}/{action}/", body or {}, format="json")


def history(lead):
    return list(
        StageTransition.objects.filter(lead=lead).order_by("at", "id").values_list("from_stage", "to_stage", "cycle")
    )


def mql_owned_by(rep, **kwargs):
    lead = LeadFactory(**kwargs)
    lead_change_stage(lead=lead, to_stage="mql", cause="rule", cause_ref="rule:1", owner=rep)
    lead.refresh_from_db()
    return lead


def test_visitor_to_customer_the_happy_path_keeps_a_complete_history(
    marketer_client, sales_client, marketer, sales_rep
):
    lead = LeadFactory()
    marked = act(marketer_client, lead, "mark-mql", {"reason": "Asked for pricing on the phone"})
    assert marked.status_code == 200
    assert marked.json()["stage"] == "mql" and marked.json()["owner"] == sales_rep.pk
    assert marked.json()["sla_due_at"] is not None

    assert act(sales_client, lead, "accept").json()["stage"] == "sal"
    qualified = act(sales_client, lead, "qualify", {**FACTS, "budget": "30000"})
    assert qualified.status_code == 200
    assert qualified.json()["lead"]["stage"] == "sql"
    assert qualified.json()["opportunity"]["status"] == "open"
    won = act(sales_client, lead, "close", {"won": True})
    assert won.status_code == 200 and won.json()["stage"] == "customer"

    assert history(lead) == [("visitor", "mql", 1), ("mql", "sal", 1), ("sal", "sql", 1), ("sql", "customer", 1)]
    transitions = StageTransition.objects.filter(lead=lead).order_by("at", "id")
    assert [t.actor for t in transitions] == [marketer, sales_rep, sales_rep, sales_rep]
    assert transitions[0].reason == "Asked for pricing on the phone" and transitions[0].cause == "user"
    assert transitions[2].details["influencer"] == FACTS["influencer"]
    opportunity = Opportunity.objects.get(lead=lead)
    assert opportunity.status == "won" and opportunity.closed_at is not None
    assert str(opportunity.opportunity_size) == "24000.00" and str(opportunity.budget) == "30000.00"
    assert OutboxMessage.objects.filter(topic="lead.stage_changed").count() == 4
    lead.refresh_from_db()
    assert lead.first_response_at is not None and lead.sla_due_at is None


def test_a_rejected_lead_is_recycled_and_can_come_back_as_mql_in_a_new_cycle(marketer_client, sales_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    rejected = act(sales_client, lead, "reject", {"reason_code": "not_ready", "reason": "Budget opens in spring"})
    assert rejected.status_code == 200
    assert rejected.json()["stage"] == "recycled" and rejected.json()["owner"] is None
    recycled = StageTransition.objects.get(lead=lead, to_stage="recycled")
    assert (recycled.reason_code, recycled.reason) == ("not_ready", "Budget opens in spring")

    again = act(marketer_client, lead, "mark-mql", {"reason": "Came back for the webinar"})
    assert again.status_code == 200 and again.json()["cycle"] == 2 and again.json()["owner"] == sales_rep.pk
    assert act(sales_client, lead, "accept").json()["stage"] == "sal"
    assert history(lead) == [("visitor", "mql", 1), ("mql", "recycled", 1), ("recycled", "mql", 2), ("mql", "sal", 2)]


def test_an_sql_can_be_lost_with_a_reason(sales_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    act(sales_client, lead, "accept")
    act(sales_client, lead, "qualify", FACTS)
    no_reason = act(sales_client, lead, "close", {"won": False})
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["message"]
    lost = act(
        sales_client, lead, "close", {"won": False, "reason_code": "price", "reason": "Went with a cheaper tool"}
    )
    assert lost.status_code == 200 and lost.json()["stage"] == "lost" and lost.json()["owner"] is None
    opportunity = Opportunity.objects.get(lead=lead)
    assert (opportunity.status, opportunity.close_reason_code) == ("lost", "price")
    assert history(lead)[-1] == ("sql", "lost", 1)


@pytest.mark.parametrize("path", [[], ["mql"], ["mql", "sal"], ["mql", "sal", "sql"], ["mql", "recycled"]])
def test_any_open_stage_can_be_disqualified_with_a_reason(sales_client, sales_rep, path):
    lead = LeadFactory()
    for stage in path:
        lead_change_stage(lead=lead, to_stage=stage, cause="user", owner=sales_rep if stage == "mql" else None)
    client = sales_client
    no_reason = act(client, lead, "disqualify")
    assert no_reason.status_code == 400
    response = act(client, lead, "disqualify", {"reason_code": "competitor", "reason": "Works at a competitor"})
    assert response.status_code == 200 and response.json()["stage"] == "disqualified"
    assert StageTransition.objects.filter(lead=lead).last().reason_code == "competitor"
    assert act(client, lead, "disqualify", {"reason": "again"}).status_code == 409


def test_a_marketer_may_disqualify_a_spam_visitor(marketer_client):
    lead = LeadFactory()
    assert act(marketer_client, lead, "disqualify", {"reason_code": "spam"}).json()["stage"] == "disqualified"


@pytest.mark.parametrize(
    ("path", "action", "body"),
    [
        ([], "accept", {}),
        ([], "qualify", FACTS),
        (["mql"], "qualify", FACTS),
        (["mql"], "close", {"won": True}),
        (["mql", "sal"], "close", {"won": True}),
        (["mql", "sal"], "accept", {}),
        (["mql", "sal", "sql", "customer"], "reject", {"reason": "changed my mind"}),
        (["mql", "sal", "sql", "customer"], "disqualify", {"reason": "x"}),
    ],
)
def test_illegal_moves_answer_409_with_the_funnels_message(admin_client_api, sales_rep, path, action, body):
    lead = LeadFactory()
    for stage in path:
        lead_change_stage(lead=lead, to_stage=stage, cause="user", owner=sales_rep if stage == "mql" else None)
    before = history(lead)
    response = act(admin_client_api, lead, action, body)
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert "cannot" in response.json()["message"] or "not" in response.json()["message"]
    assert history(lead) == before


def test_marking_a_sal_as_mql_is_illegal(marketer_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    lead_change_stage(lead=lead, to_stage="sal", cause="user")
    response = act(marketer_client, lead, "mark-mql", {"reason": "x"})
    assert response.status_code == 409
    assert response.json()["message"].startswith("A lead cannot move from SAL to MQL")


def test_marking_mql_requires_a_reason_and_a_marketer(marketer_client, sales_client):
    lead = LeadFactory()
    assert act(marketer_client, lead, "mark-mql").status_code == 400
    assert act(sales_client, lead, "mark-mql", {"reason": "x"}).status_code == 403
    assert history(lead) == []


def test_rejecting_requires_a_reason_from_the_vocabulary_or_text(sales_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    missing = act(sales_client, lead, "reject")
    assert missing.status_code == 400 and "reason" in missing.json()["message"]
    unknown = act(sales_client, lead, "reject", {"reason_code": "vibes"})
    assert unknown.status_code == 400
    lead.refresh_from_db()
    assert lead.stage == "mql" and lead.owner == sales_rep


def test_qualifying_requires_the_five_facts_but_not_the_budget(sales_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    act(sales_client, lead, "accept")
    incomplete = {k: v for k, v in FACTS.items() if k != "influencer"}
    response = act(sales_client, lead, "qualify", incomplete)
    assert response.status_code == 400 and "influencer" in response.json()["errors"]
    assert not Opportunity.objects.exists()
    assert act(sales_client, lead, "qualify", FACTS).status_code == 200
    assert Opportunity.objects.get().budget is None


def test_a_marketer_cannot_accept(marketer_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    response = act(marketer_client, lead, "accept")
    assert response.status_code == 403
    assert response.json()["message"]
    lead.refresh_from_db()
    assert lead.stage == "mql"


def test_rep_b_cannot_act_on_rep_as_lead_but_an_admin_can(other_rep_client, admin_client_api, sales_rep):
    lead = mql_owned_by(sales_rep)
    for action, body in (("accept", {}), ("reject", {"reason": "mine now"}), ("disqualify", {"reason": "x"})):
        response = act(other_rep_client, lead, action, body)
        assert response.status_code == 403
        assert "owns this lead" in response.json()["message"]
    lead.refresh_from_db()
    assert lead.stage == "mql" and lead.owner == sales_rep
    assert act(admin_client_api, lead, "accept").json()["stage"] == "sal"


def test_anonymous_callers_get_401(anon_client, sales_rep):
    lead = mql_owned_by(sales_rep)
    assert act(anon_client, lead, "accept").status_code == 401
    assert anon_client.get("/api/v1/leads/").status_code == 401


def test_an_unowned_mql_is_claimed_by_the_rep_who_accepts_it(sales_client, sales_rep):
    lead = LeadFactory()
    SalesRepProfile.objects.create(user=sales_rep, is_away=True)
    lead_change_stage(lead=lead, to_stage="mql", cause="rule")
    lead.refresh_from_db()
    assert lead.owner is None
    response = act(sales_client, lead, "accept")
    assert response.status_code == 200 and response.json()["owner"] == sales_rep.pk


def test_new_mqls_go_round_robin_skipping_away_reps(marketer_client, sales_rep, other_rep):
    first, second, third = LeadFactory(), LeadFactory(), LeadFactory()
    owners = [act(marketer_client, lead, "mark-mql", {"reason": "x"}).json()["owner"] for lead in (first, second)]
    assert set(owners) == {sales_rep.pk, other_rep.pk}
    SalesRepProfile.objects.filter(user=other_rep).update(is_away=True)
    assert act(marketer_client, third, "mark-mql", {"reason": "x"}).json()["owner"] == sales_rep.pk


def test_an_unknown_lead_is_a_404(sales_client):
    assert act(sales_client, LeadFactory.build(pk=999999), "accept").status_code == 404


def test_a_rep_at_capacity_gets_no_new_mqls(marketer_client, sales_rep, other_rep):
    SalesRepProfile.objects.create(user=sales_rep, capacity=1)
    mql_owned_by(sales_rep)
    fresh = LeadFactory()
    assert act(marketer_client, fresh, "mark-mql", {"reason": "x"}).json()["owner"] == other_rep.pk

"""Scoring API: rules, settings, recompute (marketers and admins) and a lead's score (also sales)."""

import pytest

from leadfunnel.models import AuditEvent
from leads.models import Interaction
from scoring import services
from scoring.models import RecomputeJob, ScoringRule, ScoringSettings
from tests.factories import LeadFactory
from tests.scoring import funnel

pytestmark = pytest.mark.django_db

RULES = "/api/v1/scoring/rules/"
SETTINGS = "/api/v1/scoring/settings/"
RECOMPUTE = "/api/v1/scoring/recompute/"

PRICING = {
    "name": "Pricing page",
    "dimension": "engagement",
    "source": "interaction",
    "interaction_type": "page_view",
    "property": "url",
    "operator": "contains",
    "value": "/pricing",
    "points": 15,
    "max_points": 45,
    "half_life_days": 30,
}


def test_marketers_see_the_default_rules(marketer_client):
    response = marketer_client.get(RULES)
    assert response.status_code == 200
    assert response.json()["count"] == ScoringRule.objects.count() > 20
    first = response.json()["results"][0]
    assert {
        "name",
        "dimension",
        "source",
        "field",
        "operator",
        "value",
        "points",
        "max_points",
        "half_life_days",
        "blocks_mql",
        "active",
    } <= set(first)


@pytest.mark.parametrize("method", ["get", "post"])
def test_sales_reps_and_anonymous_callers_may_not_touch_rules(sales_client, anon_client, method):
    assert getattr(sales_client, method)(RULES, PRICING, format="json").status_code == 403
    assert getattr(anon_client, method)(RULES, PRICING, format="json").status_code in (401, 403)
    assert not ScoringRule.objects.filter(name="Pricing page").exists()


def test_creating_a_rule_audits_it_and_recomputes_every_lead(
    marketer_client, marketer, django_capture_on_commit_callbacks
):
    lead = LeadFactory()
    Interaction.objects.create(lead=lead, type="page_view", properties={"url": "https://x.example/pricing"})
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(RULES, PRICING, format="json")
    assert response.status_code == 201, response.json()
    rule = ScoringRule.objects.get(pk=response.json()["id"])
    assert (rule.points, rule.max_points, rule.created_by) == (15, 45, marketer)
    audit = AuditEvent.objects.get(action="scoring.rule_created")
    assert (audit.actor, audit.object_id, audit.changes["points"]) == (marketer, str(rule.pk), 15)
    job = RecomputeJob.objects.get()
    assert (job.status, job.done, job.total) == ("done", 1, 1)
    assert lead.score_contributions.filter(rule=rule, points=15).exists()
    progress = marketer_client.get(RECOMPUTE).json()
    assert (progress["status"], progress["done"], progress["total"]) == ("done", 1, 1)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {
                "source": "profile",
                "field": "favourite_colour",
                "operator": "equals",
                "value": "x",
                "interaction_type": "",
                "property": "",
                "half_life_days": None,
            },
            "field",
            "Unknown profile field",
        ),
        (
            {
                "source": "profile",
                "field": "company_employees",
                "operator": "contains",
                "value": "x",
                "interaction_type": "",
                "property": "",
                "half_life_days": None,
            },
            "operator",
            "does not apply",
        ),
        ({"interaction_type": "carrier_pigeon"}, "interaction_type", "Unknown interaction type"),
        ({"operator": "regex", "value": "(x+)+y"}, "value", "too expensive"),
        ({"max_points": -10}, "max_points", "same sign"),
        ({"operator": "sounds_like"}, "operator", "Unknown operator"),
        ({"points": "lots"}, "points", "number"),
        ({"dimension": "vibes"}, "dimension", ""),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_400(marketer_client, change, field, words):
    before = ScoringRule.objects.count()
    response = marketer_client.post(RULES, {**PRICING, **change}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert field in body["errors"], body
    assert words in str(body["errors"][field])
    assert ScoringRule.objects.count() == before
    assert not AuditEvent.objects.filter(action="scoring.rule_created").exists()


def test_patching_and_deleting_a_rule(marketer_client, django_capture_on_commit_callbacks):
    rule = services.rule_create(recompute=False, **PRICING)
    version = ScoringSettings.objects.get().version
    response = marketer_client.patch(f"{RULES}{rule.pk}/", {"points": 20}, format="json")
    assert response.status_code == 200
    assert response.json()["points"] == 20
    assert ScoringSettings.objects.get().version == version + 1
    assert AuditEvent.objects.get(action="scoring.rule_updated").changes == {"points": [15.0, 20]}
    bad = marketer_client.patch(f"{RULES}{rule.pk}/", {"max_points": 5}, format="json")
    assert bad.status_code == 400
    assert ScoringRule.objects.get(pk=rule.pk).max_points == 45
    with django_capture_on_commit_callbacks(execute=True):
        assert marketer_client.delete(f"{RULES}{rule.pk}/").status_code == 204
    assert not ScoringRule.objects.filter(pk=rule.pk).exists()
    assert AuditEvent.objects.filter(action="scoring.rule_deleted", object_id=str(rule.pk)).exists()
    assert marketer_client.get(f"{RULES}{rule.pk}/").status_code == 404


def test_settings_can_be_read_and_changed_by_marketers(
    marketer_client, sales_client, django_capture_on_commit_callbacks
):
    assert sales_client.get(SETTINGS).status_code == 403
    data = marketer_client.get(SETTINGS).json()
    assert (data["mql_threshold"], data["sla_hours"]) == (60, 24)
    assert data["required_profile_fields"] == ["first_name", "last_name", "title"]
    assert data["pql_rule"]["trial_type"] == "trial_started"
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.patch(
            SETTINGS,
            {"mql_threshold": 55, "sla_hours": 8, "competitor_domains": ["Rival.example", "@other.example"]},
            format="json",
        )
    assert response.status_code == 200, response.json()
    row = ScoringSettings.objects.get()
    assert (row.mql_threshold, row.sla_hours, row.competitor_domains) == (55, 8, ["rival.example", "other.example"])
    assert AuditEvent.objects.filter(action="scoring.settings_updated").exists()
    assert RecomputeJob.objects.get().status == "done"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mql_threshold": 0}, "mql_threshold"),
        ({"mql_threshold": 101}, "mql_threshold"),
        ({"required_profile_fields": ["first_name", "shoe_size"]}, "required_profile_fields"),
        ({"free_mail_domains": ["not a domain"]}, "free_mail_domains"),
        ({"pql_rule": {"enabled": True, "min_usage": 0}}, "pql_rule"),
        ({"pql_rule": {"enabled": True, "trial_type": "nope"}}, "pql_rule"),
        ({"sales_ready_threshold": 30}, "sales_ready_threshold"),
        ({"fit_weight": 0, "engagement_weight": 0}, "fit_weight"),
    ],
)
def test_bad_settings_are_a_400_and_change_nothing(marketer_client, body, field):
    version = marketer_client.get(SETTINGS).json()["version"]
    response = marketer_client.patch(SETTINGS, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert ScoringSettings.objects.get().version == version


def test_marketers_can_start_a_recompute_and_follow_its_progress(marketer_client, sales_client):
    LeadFactory.create_batch(3)
    assert marketer_client.get(RECOMPUTE).json()["status"] == "idle"
    assert sales_client.post(RECOMPUTE).status_code == 403
    response = marketer_client.post(RECOMPUTE)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["total"]) == ("pending", 3)


def test_a_lead_score_explains_every_contribution(sales_client, marketer_client, anon_client):
    lead = LeadFactory(email="cto@corp.example", title="CTO", first_name="Ada", last_name="L")
    interaction = Interaction.objects.create(lead=lead, type="demo_request")
    funnel.score_interactions(lead=lead, interactions=[interaction])
    response = sales_client.get(f"/api/v1/leads/{lead.pk}/score/")
    assert response.status_code == 200
    body = response.json()
    assert (body["score"], body["fit_score"], body["engagement_score"]) == (55, 60, 50)
    assert body["predicted_probability"] is None
    by_rule = {c["rule_name"]: c for c in body["contributions"]}
    demo = by_rule["Requested a demo"]
    assert (demo["dimension"], demo["points"], demo["interaction"]) == ("engagement", 50, interaction.pk)
    assert demo["reason"] and demo["at"]
    assert by_rule["Business email address"]["field"] == "email_domain_kind"
    assert sum(c["points"] for c in body["contributions"] if c["dimension"] == "fit") == 60
    assert marketer_client.get(f"/api/v1/leads/{lead.pk}/score/").status_code == 200
    assert anon_client.get(f"/api/v1/leads/{lead.pk}/score/").status_code in (401, 403)
    assert sales_client.get("/api/v1/leads/999999/score/").status_code == 404


def test_the_schema_describes_the_scoring_endpoints(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    for path in (RULES, SETTINGS, RECOMPUTE, "/api/v1/leads/{id}/score/"):
        assert path.encode() in schema.content

"""The default B2B model: what out of the box makes an MQL, and what does not."""

import pytest

from leads.models import Interaction, Lead, StageTransition
from scoring.models import ScoreContribution, ScoringRule
from scoring.selectors import scoring_settings_get
from tests.factories import LeadFactory
from tests.scoring import funnel

pytestmark = pytest.mark.django_db


def _visit(lead, type_, **properties):
    interaction = Interaction.objects.create(lead=lead, type=type_, properties=properties)
    funnel.score_interactions(lead=lead, interactions=[interaction])
    return interaction


def _senior(email, title="VP Marketing"):
    return LeadFactory(email=email, first_name="Grace", last_name="Hopper", title=title)


def test_a_fresh_install_ships_the_default_rules_on_first_use():
    assert ScoringRule.objects.count() == 0
    settings_row = scoring_settings_get()
    assert settings_row.mql_threshold == 60
    assert settings_row.required_profile_fields == ["first_name", "last_name", "title"]
    assert "gmail.com" in settings_row.free_mail_domains
    assert "mailinator.com" in settings_row.disposable_domains
    assert "info" in settings_row.role_account_prefixes
    assert ScoringRule.objects.filter(builtin_key="act_demo_request", points=50).exists()
    assert ScoringRule.objects.filter(builtin_key="neg_free_mail", points__lt=0).exists()


def test_a_senior_business_lead_who_asks_for_a_demo_and_sees_pricing_becomes_an_mql(sales_rep):
    lead = _senior("grace@navy-systems.example")
    _visit(lead, "demo_request")
    lead.refresh_from_db()
    assert lead.stage == "visitor"
    _visit(lead, "page_view", url="https://leadfunnel.example/pricing")
    lead.refresh_from_db()
    assert lead.fit_score == 60
    assert lead.engagement_score == 72
    assert lead.score == 66
    assert lead.stage == "mql"
    assert lead.owner == sales_rep
    assert lead.sla_due_at is not None
    transition = StageTransition.objects.get(lead=lead, to_stage="mql")
    assert transition.cause == "rule"
    assert transition.details["score"] == 66
    assert {r["name"] for r in transition.details["rules"]} >= {
        "Requested a demo",
        "Senior title (C-level, VP, head, director, founder)",
    }


def test_the_same_person_on_gmail_does_not_become_an_mql(sales_rep):
    lead = _senior("grace.hopper@gmail.com")
    _visit(lead, "demo_request")
    _visit(lead, "page_view", url="https://leadfunnel.example/pricing")
    lead.refresh_from_db()
    assert lead.fit_score == 15
    assert lead.score < 60
    assert lead.stage == "visitor"
    assert ScoreContribution.objects.filter(lead=lead, rule__builtin_key="neg_free_mail", points=-25).exists()


def test_a_student_does_not_become_an_mql(sales_rep):
    lead = _senior("grace@navy-systems.example", title="Student")
    _visit(lead, "demo_request")
    _visit(lead, "page_view", url="https://leadfunnel.example/pricing")
    lead.refresh_from_db()
    assert lead.mql_blocked is True
    assert lead.stage == "visitor"
    assert not StageTransition.objects.filter(lead=lead).exists()
    assert Lead.objects.get(pk=lead.pk).fit_score == 0


def test_seed_demo_installs_the_default_model_and_is_idempotent():
    from scoring.demo import seed_demo

    assert "scoring rules" in seed_demo()
    count = ScoringRule.objects.count()
    assert count > 20
    assert "(0 added now)" in seed_demo()
    assert ScoringRule.objects.count() == count

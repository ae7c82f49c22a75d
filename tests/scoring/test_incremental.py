"""The incremental path: every interaction and profile change updates the lead's scores at once."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from leads.models import Interaction, Lead, StageTransition
from scoring import services
from scoring.models import LeadRuleTotal, ScoreContribution
from scoring.selectors import lead_score_get
from tests.factories import FormFactory, LeadFactory
from tests.scoring import funnel

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_interaction_rules_add_points_and_explain_them(make_rule, record):
    rule = make_rule(
        name="Pricing page",
        interaction_type="page_view",
        property="url",
        operator="contains",
        value="/pricing",
        points=12,
    )
    lead = LeadFactory()
    blog = record(lead, "page_view", url="https://x.example/blog")
    pricing = record(lead, "page_view", url="https://x.example/pricing?plan=pro")
    lead.refresh_from_db()
    assert lead.engagement_points == 12
    assert lead.engagement_score == 12
    assert lead.score == 6  # 50/50 weights, fit 0
    row = ScoreContribution.objects.get(lead=lead)
    assert (row.rule_id, row.points, row.interaction_id, row.field) == (rule.pk, 12, pricing.pk, "url")
    assert "Pricing page" in row.reason and "/pricing" in row.reason
    assert not ScoreContribution.objects.filter(interaction=blog).exists()


def test_a_cap_limits_what_one_lead_gets_from_a_rule_and_shows_in_the_ledger(make_rule, record):
    make_rule(name="Email click", interaction_type="email_click", points=4, max_points=10)
    lead = LeadFactory()
    for _ in range(5):
        record(lead, "email_click")
    lead.refresh_from_db()
    assert lead.engagement_points == 10
    assert list(ScoreContribution.objects.filter(lead=lead).order_by("id").values_list("points", flat=True)) == [
        4,
        4,
        2,
    ]
    assert "capped at 10" in ScoreContribution.objects.filter(lead=lead).order_by("id").last().reason
    total = LeadRuleTotal.objects.get(lead=lead)
    assert (total.matches, total.raw_points, total.points) == (5, 20, 10)


def test_a_negative_rule_is_capped_at_its_negative_floor(make_rule, record):
    make_rule(name="Bounce", dimension="fit", interaction_type="email_bounce", points=-15, max_points=-20)
    lead = LeadFactory()
    for _ in range(3):
        record(lead, "email_bounce")
    lead.refresh_from_db()
    assert lead.fit_points == -20
    assert lead.fit_score == 0  # dimensions are clamped to 0..100


def test_engagement_halves_every_half_life_and_the_api_shows_it(make_rule, record):
    make_rule(name="Demo", interaction_type="demo_request", points=40, half_life_days=10)
    lead = LeadFactory()
    with time_machine.travel(NOW, tick=False):
        record(lead, "demo_request")
    lead.refresh_from_db()
    assert lead.engagement_points == 40
    with time_machine.travel(NOW + timedelta(days=10), tick=False):
        data = lead_score_get(lead=lead)
        assert data["engagement_points"] == pytest.approx(20)
        assert data["engagement_score"] == 20
        assert data["contributions"][0]["points"] == 40
        assert data["contributions"][0]["current_points"] == pytest.approx(20)
        # The periodic task refreshes the stored columns in batches.
        assert services.scores_refresh_decayed() == 1
    lead.refresh_from_db()
    assert lead.engagement_points == pytest.approx(20)
    assert lead.engagement_score == 20


def test_a_new_interaction_adds_to_the_decayed_value(make_rule, record):
    make_rule(name="Demo", interaction_type="demo_request", points=40, half_life_days=10)
    lead = LeadFactory()
    with time_machine.travel(NOW, tick=False):
        record(lead, "demo_request")
    with time_machine.travel(NOW + timedelta(days=20), tick=False):
        record(lead, "demo_request")
    lead.refresh_from_db()
    assert lead.engagement_points == pytest.approx(40 / 4 + 40)


def test_a_late_event_counts_from_when_it_happened(make_rule):
    make_rule(name="Demo", interaction_type="demo_request", points=40, half_life_days=10)
    lead = LeadFactory()
    with time_machine.travel(NOW, tick=False):
        old = Interaction.objects.create(lead=lead, type="demo_request", occurred_at=NOW - timedelta(days=10))
        funnel.score_interactions(lead=lead, interactions=[old])
    lead.refresh_from_db()
    assert lead.engagement_points == pytest.approx(20)


def test_form_submissions_score_the_forms_channel_weight(make_rule, record):
    make_rule(name="Form", interaction_type="form_submit", points=3, use_channel_weight=True, max_points=100)
    demo_form = FormFactory(slug="demo", channel_weight=30)
    newsletter = FormFactory(slug="newsletter", channel_weight=5)
    lead = LeadFactory()
    record(lead, "form_submit", form_slug=demo_form.slug)
    record(lead, "form_submit", form=newsletter.slug)
    record(lead, "form_submit")  # no form: the rule's own points
    lead.refresh_from_db()
    assert lead.engagement_points == 38
    reasons = list(ScoreContribution.objects.filter(lead=lead).order_by("id").values_list("reason", flat=True))
    assert "channel weight of form 'demo'" in reasons[0]


def test_profile_rules_follow_profile_changes(make_rule):
    make_rule(
        name="Senior",
        dimension="fit",
        source="profile",
        field="title",
        operator="regex",
        value=r"\b(vp|director)\b",
        points=30,
    )
    make_rule(
        name="Free mail",
        dimension="fit",
        source="profile",
        field="email_domain_kind",
        operator="equals",
        value="free",
        points=-20,
    )
    lead = LeadFactory(title="Engineer", email="ann@gmail.com")
    funnel.score_profile_change(lead=lead)
    lead.refresh_from_db()
    assert lead.fit_points == -20
    Lead.objects.filter(pk=lead.pk).update(title="VP Sales", email="ann@ann-corp.example")
    lead.refresh_from_db()
    funnel.score_profile_change(lead=lead)
    lead.refresh_from_db()
    assert lead.fit_points == 30
    assert list(ScoreContribution.objects.filter(lead=lead).values_list("rule__name", "points", "field")) == [
        ("Senior", 30, "title")
    ]
    assert LeadRuleTotal.objects.filter(lead=lead).count() == 1


def test_a_blocking_negative_stops_promotion_whatever_the_score(make_rule, record, sales_rep, blank_model):
    services.scoring_settings_update(mql_threshold=20, recompute=False)
    make_rule(name="Demo", interaction_type="demo_request", points=100)
    make_rule(
        name="Competitor",
        dimension="fit",
        source="profile",
        field="is_competitor",
        operator="equals",
        value=True,
        points=-1,
        blocks_mql=True,
    )
    services.scoring_settings_update(competitor_domains=["rival.example"], recompute=False)
    lead = LeadFactory(email="spy@rival.example")
    record(lead, "demo_request")
    lead.refresh_from_db()
    assert lead.score >= 20
    assert lead.mql_blocked is True
    assert lead.stage == "visitor"


def test_crossing_the_threshold_makes_an_mql_assigned_to_a_rep(make_rule, record, sales_rep, blank_model):
    services.scoring_settings_update(mql_threshold=30, recompute=False)
    rule = make_rule(name="Demo", interaction_type="demo_request", points=35)
    make_rule(
        name="Webinar", interaction_type="webinar_attended", property="minutes", operator="gte", value=30, points=30
    )
    lead = LeadFactory()
    record(lead, "webinar_attended", minutes=10)  # too short: no points
    record(lead, "webinar_attended", minutes=45)
    lead.refresh_from_db()
    assert (lead.score, lead.stage) == (15, "visitor")
    record(lead, "demo_request")
    lead.refresh_from_db()
    assert lead.score == 33
    assert lead.stage == "mql"
    assert lead.owner == sales_rep
    assert lead.sla_due_at is not None
    transition = StageTransition.objects.get(lead=lead)
    assert (transition.from_stage, transition.to_stage, transition.cause) == ("visitor", "mql", "rule")
    assert transition.cause_ref == f"rule:{rule.pk}"
    assert transition.details["score"] == 33
    assert transition.details["rules"][0]["name"] == "Demo"


def test_missing_required_profile_keeps_a_high_scorer_a_visitor_until_it_is_filled(make_rule, record, blank_model):
    services.scoring_settings_update(mql_threshold=10, recompute=False)
    make_rule(name="Demo", interaction_type="demo_request", points=50)
    lead = LeadFactory(title="")
    record(lead, "demo_request")
    lead.refresh_from_db()
    assert (lead.score, lead.stage) == (25, "visitor")
    Lead.objects.filter(pk=lead.pk).update(title="CTO")
    lead.refresh_from_db()
    funnel.score_profile_change(lead=lead)
    lead.refresh_from_db()
    assert lead.stage == "mql"


def test_falling_below_the_threshold_never_demotes(make_rule, record, sales_rep, blank_model):
    services.scoring_settings_update(mql_threshold=20, recompute=False)
    make_rule(name="Demo", interaction_type="demo_request", points=50)
    make_rule(name="Unsubscribe", interaction_type="unsubscribe", points=-50)
    lead = LeadFactory()
    record(lead, "demo_request")
    record(lead, "unsubscribe")
    lead.refresh_from_db()
    assert lead.score == 0
    assert (lead.stage, lead.owner) == ("mql", sales_rep)


def test_a_recycled_lead_comes_back_only_by_crossing_the_threshold_again(make_rule, record, sales_rep, blank_model):
    from leads.services import lead_change_stage

    services.scoring_settings_update(mql_threshold=20, recompute=False)
    make_rule(name="Demo", interaction_type="demo_request", points=50)
    make_rule(name="Page", interaction_type="page_view", points=1)
    lead = LeadFactory()
    record(lead, "demo_request")
    lead_change_stage(lead=lead, to_stage="recycled", cause="user", reason="not ready")
    record(lead, "page_view")
    lead.refresh_from_db()
    assert lead.stage == "recycled"  # the rep's rejection is not undone by the next page view


def test_the_pql_rule_makes_a_pql(make_rule, record, sales_rep, blank_model):
    services.scoring_settings_update(
        pql_rule={
            "enabled": True,
            "trial_type": "trial_started",
            "usage_type": "product_usage",
            "min_usage": 3,
            "within_days": 7,
        },
        recompute=False,
    )
    lead = LeadFactory()
    record(lead, "product_usage")  # before the trial: does not count
    record(lead, "trial_started")
    record(lead, "product_usage")
    record(lead, "product_usage")
    lead.refresh_from_db()
    assert lead.stage == "visitor"
    record(lead, "product_usage")
    lead.refresh_from_db()
    assert lead.stage == "pql"
    assert lead.owner == sales_rep
    transition = StageTransition.objects.get(lead=lead)
    assert (transition.to_stage, transition.cause, transition.cause_ref) == ("pql", "rule", "pql_rule")


def test_usage_outside_the_pql_window_does_not_count(record, blank_model):
    services.scoring_settings_update(
        pql_rule={
            "enabled": True,
            "trial_type": "trial_started",
            "usage_type": "product_usage",
            "min_usage": 2,
            "within_days": 7,
        },
        recompute=False,
    )
    lead = LeadFactory()
    record(lead, "trial_started", at=NOW)
    record(lead, "product_usage", at=NOW + timedelta(days=1))
    record(lead, "product_usage", at=NOW + timedelta(days=9))
    lead.refresh_from_db()
    assert lead.stage == "visitor"


def test_the_bulk_path_scores_many_leads_in_one_go(make_rule):
    make_rule(name="Click", interaction_type="email_click", points=5, max_points=10)
    leads = LeadFactory.create_batch(3)
    interactions = Interaction.objects.bulk_create(
        [Interaction(lead=lead, type="email_click") for lead in leads for _ in range(3)]
        + [Interaction(lead=leads[0], type="page_view")]
    )
    funnel.score_interactions_bulk(interactions=interactions)
    assert sorted(Lead.objects.values_list("engagement_points", flat=True)) == [10, 10, 10]
    assert ScoreContribution.objects.count() == 6


def _history(lead, n):
    Interaction.objects.bulk_create([Interaction(lead=lead, type="email_click") for _ in range(n)])


@pytest.mark.parametrize("history", [0, 200])
def test_scoring_one_interaction_takes_the_same_queries_whatever_the_history(
    make_rule, django_assert_num_queries, history
):
    make_rule(name="Click", interaction_type="email_click", points=1)
    make_rule(name="Open", interaction_type="email_open", points=1, half_life_days=3)
    lead = LeadFactory()
    _history(lead, history)
    funnel.score_interactions_bulk(
        interactions=list(Interaction.objects.filter(lead=lead))
        or [Interaction.objects.create(lead=lead, type="email_open")]
    )
    interaction = Interaction.objects.create(lead=lead, type="email_click")
    # 1 settings row, 2 lock the lead, 3 its per-rule totals, 4 insert the contribution,
    # 5 upsert the totals, 6 update the lead's score columns.
    with django_assert_num_queries(6):
        funnel.score_interactions(lead=lead, interactions=[interaction])


def test_the_bulk_path_takes_the_same_queries_for_one_or_many_leads(make_rule, django_assert_num_queries):
    make_rule(name="Click", interaction_type="email_click", points=1)
    leads = LeadFactory.create_batch(20)
    funnel.score_interactions_bulk(
        interactions=Interaction.objects.bulk_create([Interaction(lead=lead, type="email_click") for lead in leads])
    )
    batch = Interaction.objects.bulk_create([Interaction(lead=lead, type="email_click") for lead in leads * 5])
    with django_assert_num_queries(6):
        funnel.score_interactions_bulk(interactions=batch)
    assert set(Lead.objects.values_list("engagement_points", flat=True)) == {6}


def test_deleting_a_lead_removes_its_ledger(make_rule, record):
    make_rule(name="Click", interaction_type="email_click", points=2)
    lead, other = LeadFactory.create_batch(2)
    record(lead, "email_click")
    record(other, "email_click")
    lead.delete()
    assert list(ScoreContribution.objects.values_list("lead_id", flat=True)) == [other.pk]
    assert list(LeadRuleTotal.objects.values_list("lead_id", flat=True)) == [other.pk]


def test_a_bulk_call_promotes_many_leads_in_the_same_queries_as_one(make_rule, sales_rep, other_rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leadfunnel.models import OutboxMessage

    services.scoring_settings_update(mql_threshold=20, required_profile_fields=[], recompute=False)
    make_rule(name="Demo", interaction_type="demo_request", points=50)

    def promote(n: int) -> tuple[int, list]:
        leads = LeadFactory.create_batch(n)
        batch = Interaction.objects.bulk_create([Interaction(lead=lead, type="demo_request") for lead in leads])
        with CaptureQueriesContext(connection) as ctx:
            funnel.score_interactions_bulk(interactions=batch)
        transitions = list(StageTransition.objects.filter(lead__in=leads).order_by("lead_id"))
        assert [(t.from_stage, t.to_stage, t.cause, t.cause_ref) for t in transitions] == [
            ("visitor", "mql", "rule", f"rule:{transitions[0].details['rules'][0]['rule']}")
        ] * n
        assert all(t.reason.startswith("Score 25 reached the MQL threshold 20") for t in transitions)
        messages = OutboxMessage.objects.filter(topic="lead.stage_changed", payload__lead_id__in=[x.pk for x in leads])
        assert messages.count() == n
        return len(ctx.captured_queries), [t.owner_id for t in transitions]

    promote(1)  # the first call after a rule change loads the rule set
    one, _ = promote(1)
    many, owners = promote(12)
    assert one == many
    assert set(owners) == {sales_rep.pk, other_rep.pk} and abs(owners.count(sales_rep.pk) - 6) <= 1


def test_an_interaction_that_changes_no_score_leaves_the_lead_row_alone(make_rule, record):
    make_rule(
        name="Pricing page",
        interaction_type="page_view",
        property="url",
        operator="contains",
        value="/pricing",
        points=12,
        max_points=12,
    )
    make_rule(name="Demo", interaction_type="demo_request", points=20)
    lead = LeadFactory()
    with time_machine.travel(NOW, tick=False):
        record(lead, "page_view", url="https://x.example/pricing")
    lead.refresh_from_db()
    assert (lead.score, lead.score_updated_at) == (6, NOW)
    later = NOW + timedelta(hours=2)
    with time_machine.travel(later, tick=False):
        record(lead, "email_sent")  # no rule looks at it
        record(lead, "page_view", url="https://x.example/pricing/enterprise")  # the rule's cap is reached
        assert (lead.score, lead.score_updated_at) == (6, NOW)  # the caller's instance agrees
        lead.refresh_from_db()
        assert (lead.score, lead.score_updated_at) == (6, NOW)
        assert ScoreContribution.objects.filter(lead=lead).count() == 1
        record(lead, "demo_request")
    lead.refresh_from_db()
    assert (lead.score, lead.score_updated_at) == (16, later)


def test_a_never_scored_lead_is_written_even_at_zero(make_rule, record):
    make_rule(
        name="Pricing page",
        interaction_type="page_view",
        property="url",
        operator="contains",
        value="/pricing",
        points=12,
    )
    lead = LeadFactory()
    assert lead.score_updated_at is None
    with time_machine.travel(NOW, tick=False):
        record(lead, "email_sent")
    lead.refresh_from_db()
    assert (lead.score, lead.score_updated_at) == (0, NOW)

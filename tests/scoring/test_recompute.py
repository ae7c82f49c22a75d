"""Full recompute: set-based, batched, resumable, and equal to the incremental result."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.models import Interaction, Lead
from leads.services import leads_promote_qualified
from scoring import services
from scoring.models import LeadRuleTotal, RecomputeJob, ScoreContribution, ScoringRule
from scoring.selectors import ruleset_get, scoring_settings_get
from scoring.services import recompute
from tests.factories import FormFactory, LeadFactory
from tests.scoring import funnel

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
TYPES = ["page_view", "email_click", "demo_request", "form_submit", "webinar_attended", "unsubscribe"]
URLS = ["https://x.example/", "https://x.example/pricing", "https://x.example/blog/pricing-tips"]
PROFILES = [
    {"email": "a@corp.example", "title": "VP Sales", "first_name": "Ann", "company_size": "201-1000"},
    {"email": "b@gmail.com", "title": "Student", "first_name": "Bo", "company_size": ""},
    {"email": "info@corp2.example", "title": "", "first_name": "", "company_size": "50"},
]


@st.composite
def rule_specs(draw):
    source = draw(st.sampled_from(["interaction", "interaction", "profile"]))
    points = draw(st.integers(-20, 40).filter(lambda p: p != 0))
    cap = draw(st.one_of(st.none(), st.integers(abs(points), 3 * abs(points))))
    spec = {"points": points, "max_points": None if cap is None else (cap if points > 0 else -cap)}
    if source == "profile":
        field, operator, value = draw(
            st.sampled_from(
                [
                    ("title", "regex", r"\b(vp|director)\b"),
                    ("title", "contains", ["student", "intern"]),
                    ("email_domain_kind", "equals", "free"),
                    ("is_role_account", "equals", True),
                    ("company_employees", "gte", 200),
                    ("first_name", "present", True),
                    ("email", "endswith", ".example"),
                ]
            )
        )
        spec.update(source="profile", dimension="fit", field=field, operator=operator, value=value)
        spec["blocks_mql"] = draw(st.booleans())
        return spec
    itype = draw(st.sampled_from(TYPES))
    spec.update(source="interaction", interaction_type=itype, dimension=draw(st.sampled_from(["fit", "engagement"])))
    if itype == "page_view" and draw(st.booleans()):
        spec.update(property="url", operator="contains", value="/pricing")
    if itype == "webinar_attended":
        spec.update(property="minutes", operator="gte", value=30)
    if itype == "form_submit" and draw(st.booleans()):
        spec.update(use_channel_weight=True, max_points=None)
    if spec["dimension"] == "engagement" and draw(st.booleans()):
        spec["half_life_days"] = draw(st.sampled_from([1, 7, 30]))
    return spec


events = st.lists(
    st.tuples(
        st.integers(0, 2),  # which lead
        st.sampled_from(TYPES),
        st.sampled_from(URLS),
        st.integers(0, 90),  # webinar minutes
        st.integers(0, 40 * 24),  # hours before NOW
    ),
    max_size=30,
)


def _snapshot():
    leads = {
        row["id"]: row
        for row in Lead.objects.values(
            "id", "score", "fit_score", "engagement_score", "mql_blocked", "fit_points", "engagement_points"
        )
    }
    contributions = Counter(
        (c.lead_id, c.rule_id, c.source, round(c.points, 6), c.interaction_id, c.field, c.reason)
        for c in ScoreContribution.objects.all()
    )
    ruleset = ruleset_get()
    totals = {}
    for t in LeadRuleTotal.objects.all():
        spec = ruleset.by_id[t.rule_id]
        from scoring.rules import decay_factor

        totals[(t.lead_id, t.rule_id)] = (
            t.matches,
            round(t.raw_points, 6),
            round(t.points, 6),
            round(t.value * decay_factor(spec.half_life_days, t.value_at, NOW + timedelta(days=3)), 6),
        )
    return leads, contributions, totals


def _assert_same(incremental, recomputed):
    leads_a, contributions_a, totals_a = incremental
    leads_b, contributions_b, totals_b = recomputed
    assert leads_a.keys() == leads_b.keys()
    for lead_id, a in leads_a.items():
        b = leads_b[lead_id]
        for key in ("score", "fit_score", "engagement_score", "mql_blocked"):
            assert a[key] == b[key], (lead_id, key, a, b)
        assert a["fit_points"] == pytest.approx(b["fit_points"], abs=1e-6)
        assert a["engagement_points"] == pytest.approx(b["engagement_points"], abs=1e-6)
    assert contributions_a == contributions_b
    assert totals_a == totals_b


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(rule_specs(), min_size=1, max_size=6), stream=events, chunking=st.integers(1, 5))
def test_incremental_scoring_equals_a_full_recompute(blank_model, rules, stream, chunking):
    with transaction.atomic():
        with time_machine.travel(NOW, tick=False):
            services.scoring_settings_update(
                mql_threshold=100,
                sales_ready_threshold=None,
                pql_rule={"enabled": False},
                competitor_domains=["corp2.example"],
                recompute=False,
            )
            ScoringRule.objects.update(active=False)
            for i, spec in enumerate(rules):
                services.rule_create(name=f"r{i}", recompute=False, **spec)
            FormFactory(slug="demo", channel_weight=25)
            leads = [LeadFactory(**profile) for profile in PROFILES]
            for lead in leads:
                funnel.score_profile_change(lead=lead)
            # Interactions arrive in chunks (the bulk endpoint) or one by one (the single endpoint).
            pending: list[Interaction] = []
            for n, (who, itype, url, minutes, hours_ago) in enumerate(stream):
                at = NOW - timedelta(hours=hours_ago)
                props = {"url": url, "minutes": minutes, "form_slug": "demo" if n % 2 else "other"}
                pending.append(
                    Interaction.objects.create(
                        lead=leads[who], type=itype, properties=props, occurred_at=at, received_at=NOW
                    )
                )
                if len(pending) >= chunking:
                    funnel.score_interactions_bulk(interactions=pending)
                    pending = []
            if pending:
                funnel.score_interactions_bulk(interactions=pending)
        with time_machine.travel(NOW + timedelta(days=3), tick=False):
            services.scores_refresh_decayed()
            incremental = _snapshot()
            job = services.scoring_recompute_all(batch_size=2)
            assert (job.status, job.done, job.total) == ("done", 3, 3)
            recomputed = _snapshot()
        _assert_same(incremental, recomputed)
        transaction.set_rollback(True)


def test_recompute_applies_changed_rules_to_every_lead_in_batches(make_rule):
    rule = make_rule(name="Click", interaction_type="email_click", points=5)
    leads = LeadFactory.create_batch(5)
    for lead in leads:
        interaction = Interaction.objects.create(lead=lead, type="email_click")
        funnel.score_interactions(lead=lead, interactions=[interaction])
    services.rule_update(rule=rule, points=7, max_points=100, recompute=False)
    job = services.scoring_recompute_all(batch_size=2)
    assert (job.status, job.done, job.total, job.last_lead_id) == ("done", 5, 5, leads[-1].pk)
    assert set(Lead.objects.values_list("engagement_points", flat=True)) == {7}
    assert set(ScoreContribution.objects.values_list("points", flat=True)) == {7}


def test_a_recompute_interrupted_midway_resumes_after_the_last_lead_done(make_rule, monkeypatch, crash_on_batch):
    make_rule(name="Click", interaction_type="email_click", points=5)
    leads = LeadFactory.create_batch(4)
    Interaction.objects.bulk_create([Interaction(lead=lead, type="email_click") for lead in leads])
    original = crash_on_batch(2)
    job = RecomputeJob.objects.create(total=4)
    with pytest.raises(RuntimeError):
        services.scoring_recompute_all(job=job, batch_size=2)
    job.refresh_from_db()
    assert (job.status, job.done, job.last_lead_id) == ("failed", 2, leads[1].pk)
    assert list(Lead.objects.order_by("pk").values_list("engagement_points", flat=True)) == [5, 5, 0, 0]

    monkeypatch.setattr(recompute, "_write_batch", original)
    RecomputeJob.objects.filter(pk=job.pk).update(status="pending")
    job = services.scoring_recompute_all(job=job, batch_size=2)
    assert (job.status, job.done) == ("done", 4)
    assert list(Lead.objects.order_by("pk").values_list("engagement_points", flat=True)) == [5, 5, 5, 5]


def test_a_superseded_job_stops_at_its_next_batch(make_rule):
    LeadFactory.create_batch(3)
    old = services.recompute_request(reason="first")
    new = services.recompute_request(reason="second")
    old.refresh_from_db()
    assert old.status == "superseded"
    assert services.scoring_recompute_all(job=old).status == "superseded"
    assert services.scoring_recompute_all(job=new).status == "done"


def test_recompute_promotes_leads_that_now_qualify(make_rule, sales_rep, django_capture_on_commit_callbacks):
    services.scoring_settings_update(mql_threshold=40, recompute=False)
    rule = make_rule(name="Demo", interaction_type="demo_request", points=10)
    lead = LeadFactory()
    interaction = Interaction.objects.create(lead=lead, type="demo_request")
    funnel.score_interactions(lead=lead, interactions=[interaction])
    lead.refresh_from_db()
    assert lead.stage == "visitor"
    services.rule_update(rule=rule, points=100, recompute=False)
    with django_capture_on_commit_callbacks(execute=True):  # the funnel promotes off the outbox
        job = services.scoring_recompute_all()
    job.refresh_from_db()
    lead.refresh_from_db()
    assert (job.promoted, lead.stage, lead.owner) == (1, "mql", sales_rep)


def test_the_recompute_command_runs_a_full_recompute(make_rule):
    from django.core.management import call_command

    make_rule(name="Click", interaction_type="email_click", points=5)
    lead = LeadFactory()
    Interaction.objects.create(lead=lead, type="email_click")
    call_command("recompute_scores", "--batch-size", "10")
    lead.refresh_from_db()
    assert lead.engagement_points == 5
    assert RecomputeJob.objects.get().status == "done"


def test_settings_first_use_is_idempotent():
    first = scoring_settings_get()
    count = ScoringRule.objects.count()
    assert scoring_settings_get().pk == first.pk
    assert services.scoring_install_defaults() == 0
    assert ScoringRule.objects.count() == count


def test_recompute_keeps_reasons_with_tabs_backslashes_and_newlines_exact(make_rule):
    make_rule(
        name="Title",
        source="profile",
        dimension="fit",
        field="title",
        operator="contains",
        value=["vp"],
        points=10,
    )
    make_rule(name="Click", interaction_type="email_click", points=3, max_points=4)
    lead = LeadFactory(title="VP\tSales \\ EMEA\nand\r\\N")
    funnel.score_profile_change(lead=lead)
    for _ in range(2):  # the second click is capped: its reason says so
        funnel.score_interactions(lead=lead, interactions=[Interaction.objects.create(lead=lead, type="email_click")])
    before = sorted(ScoreContribution.objects.values_list("rule_id", "points", "reason", "field", "interaction_id"))
    assert any("\t" in reason and "\\ EMEA\n" in reason for _, _, reason, _, _ in before)

    services.scoring_recompute_all()

    after = sorted(ScoreContribution.objects.values_list("rule_id", "points", "reason", "field", "interaction_id"))
    assert after == before
    assert LeadRuleTotal.objects.filter(lead=lead).count() == 2


def test_recompute_promotion_takes_the_same_queries_for_one_lead_or_many(make_rule, sales_rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leads.models import StageTransition

    services.scoring_settings_update(mql_threshold=40, required_profile_fields=["first_name"], recompute=False)
    make_rule(name="Demo", interaction_type="demo_request", points=100)

    def promote(n: int) -> int:
        leads = LeadFactory.create_batch(n)
        Interaction.objects.bulk_create([Interaction(lead=lead, type="demo_request") for lead in leads])
        job = services.scoring_recompute_all(promote=False)
        with CaptureQueriesContext(connection) as ctx:
            assert leads_promote_qualified(job_id=job.pk) == n
        transitions = StageTransition.objects.filter(lead__in=leads, to_stage="mql")
        assert {(t.cause, t.cause_ref, t.owner_id) for t in transitions} == {
            ("rule", f"recompute:{job.pk}", sales_rep.pk)
        }
        assert all(t.details["score"] >= 40 and t.reason.startswith("Score ") for t in transitions)
        return len(ctx.captured_queries)

    assert promote(1) == promote(25)


def test_recompute_reads_properties_like_the_incremental_path(make_rule):
    """Top-level keys, dotted paths, JSON nulls, missing keys and non-object properties."""
    make_rule(
        name="Pricing", interaction_type="page_view", property="url", operator="contains", value="/pricing", points=3
    )
    make_rule(name="Long", interaction_type="webinar_attended", property="minutes", operator="gte", value=30, points=4)
    make_rule(
        name="Newsletter",
        interaction_type="email_click",
        property="utm.source",
        operator="equals",
        value="news",
        points=5,
    )
    make_rule(
        name="Campaign", interaction_type="email_click", property="campaign", operator="present", value=True, points=6
    )
    make_rule(name="Any view", interaction_type="page_view", points=1)
    lead = LeadFactory()
    for itype, properties in [
        ("page_view", {"url": "https://x.example/pricing"}),
        ("page_view", {"url": None}),
        ("page_view", {}),
        ("page_view", ["not", "an", "object"]),
        ("webinar_attended", {"minutes": 45}),
        ("webinar_attended", {"minutes": "12"}),
        ("email_click", {"utm": {"source": "news"}, "campaign": "spring"}),
        ("email_click", {"utm.source": "news"}),
        ("email_click", {"campaign": ""}),
    ]:
        interaction = Interaction.objects.create(lead=lead, type=itype, properties=properties)
        funnel.score_interactions(lead=lead, interactions=[interaction])
    before = sorted(ScoreContribution.objects.values_list("rule_id", "points", "interaction_id", "reason"))
    assert len(before) == 9  # pricing 1, any view 4, long 1, newsletter 2 (nested and literal key), campaign 1
    assert Counter(points for _, points, _, _ in before) == {3: 1, 1: 4, 4: 1, 5: 2, 6: 1}

    services.scoring_recompute_all()

    assert sorted(ScoreContribution.objects.values_list("rule_id", "points", "interaction_id", "reason")) == before

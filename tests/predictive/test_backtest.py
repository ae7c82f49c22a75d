"""Back-tests: the streaming replay equals a brute-force replay, candidate vs current side by side."""

import random
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from leads.models import Interaction, Lead, StageTransition
from scoring.engine import LeadScorer, effective_at, profile_complete
from scoring.models import ScoringRule, ScoringSettings
from scoring.predictive.backtest import backtest_compare, candidate_ruleset, current_ruleset
from scoring.rules import PROFILE_COLUMNS, lead_profile
from scoring.selectors import ruleset_forget, scoring_settings_get
from tests.factories import LeadFactory

RULES = [
    {
        "name": "Senior title",
        "dimension": "fit",
        "source": "profile",
        "field": "title",
        "operator": "regex",
        "value": r"\b(vp|head|director|chief)\b",
        "points": 60,
    },
    {
        "name": "Business email",
        "dimension": "fit",
        "source": "profile",
        "field": "email_domain_kind",
        "operator": "equals",
        "value": "business",
        "points": 30,
    },
    {
        "name": "Pricing page",
        "dimension": "engagement",
        "source": "interaction",
        "interaction_type": "page_view",
        "property": "url",
        "operator": "contains",
        "value": "/pricing",
        "points": 20,
        "max_points": 40,
        "half_life_days": 30,
    },
    {
        "name": "Demo request",
        "dimension": "engagement",
        "source": "interaction",
        "interaction_type": "demo_request",
        "points": 50,
    },
    {
        "name": "Webinar attended",
        "dimension": "engagement",
        "source": "interaction",
        "interaction_type": "webinar_attended",
        "property": "minutes",
        "operator": "gte",
        "value": 30,
        "points": 25,
    },
    {
        "name": "Student",
        "dimension": "fit",
        "source": "profile",
        "field": "title",
        "operator": "contains",
        "value": "student",
        "points": -40,
        "blocks_mql": True,
    },
]


def install_current_rules(threshold: int = 60) -> None:
    settings_row = scoring_settings_get()
    ScoringRule.objects.all().delete()
    for rule in RULES:
        ScoringRule.objects.create(**rule)
    ScoringSettings.objects.filter(pk=settings_row.pk).update(
        mql_threshold=threshold, version=F("version") + 1, fit_weight=50, engagement_weight=50
    )
    ruleset_forget()


def build_history(now, n=60, seed=11):
    """Leads with timed interactions and recorded outcomes (some accepted, some won, some rejected)."""
    rng = random.Random(seed)
    leads = []
    for i in range(n):
        created = now - timedelta(days=rng.uniform(20, 200))
        lead = LeadFactory(
            email=f"bt{i}@" + rng.choice(["firm.example", "gmail.com"]),
            title=rng.choice(["VP Sales", "Head of IT", "Analyst", "Student", "Director"]),
            first_name=rng.choice(["Ann", ""]) if i % 9 == 0 else "Ann",
            created_at=created,
        )
        rows = []
        for _ in range(rng.randint(0, 8)):
            at = created + timedelta(days=rng.uniform(0, 90))
            kind = rng.random()
            if kind < 0.4:
                rows.append(
                    Interaction(
                        lead=lead,
                        type="page_view",
                        occurred_at=at,
                        properties={"url": rng.choice(["/pricing", "/blog", "/pricing/enterprise"])},
                    )
                )
            elif kind < 0.55:
                rows.append(Interaction(lead=lead, type="demo_request", occurred_at=at, properties={}))
            elif kind < 0.75:
                rows.append(
                    Interaction(
                        lead=lead,
                        type="webinar_attended",
                        occurred_at=at,
                        properties={"minutes": rng.choice([10, 30, 55])},
                    )
                )
            else:
                rows.append(Interaction(lead=lead, type="email_open", occurred_at=at, properties={}))
        Interaction.objects.bulk_create(rows)
        fate = rng.random()
        t = created + timedelta(days=5)
        path = []
        if fate < 0.25:
            path = [("visitor", "mql"), ("mql", "sal"), ("sal", "sql"), ("sql", "customer")]
        elif fate < 0.4:
            path = [("visitor", "mql"), ("mql", "sal")]
        elif fate < 0.55:
            path = [("visitor", "mql"), ("mql", "recycled")]
        for k, (a, b) in enumerate(path):
            StageTransition.objects.create(lead=lead, from_stage=a, to_stage=b, at=t + timedelta(days=k))
        if path:
            Lead.objects.filter(pk=lead.pk).update(stage=path[-1][1])
        leads.append(lead)
    return leads


def brute_force(ruleset, *, since, until):
    """Score every lead from scratch at every moment it could have changed; first qualifying moment wins."""
    qualified = {}
    for lead in Lead.objects.order_by("pk"):
        columns = {name: getattr(lead, name) for name in PROFILE_COLUMNS}
        profile = lead_profile(columns, ruleset.lists)
        if profile_complete(profile, ruleset.required_profile_fields):
            continue
        events = list(Interaction.objects.filter(lead=lead).order_by("occurred_at", "id"))
        moments = sorted(
            {lead.created_at, *(max(effective_at(e.occurred_at, e.received_at), lead.created_at) for e in events)}
        )
        for moment in moments:
            if moment >= until:
                break
            scorer = LeadScorer(lead_id=lead.pk, ruleset=ruleset, totals={}, now=moment)
            scorer.apply_profile(profile)
            for e in events:
                if max(effective_at(e.occurred_at, e.received_at), lead.created_at) <= moment:
                    scorer.apply_interaction(
                        interaction_id=e.pk,
                        type=e.type,
                        properties=e.properties,
                        occurred_at=e.occurred_at,
                        received_at=e.received_at,
                    )
            result = scorer.result()
            if result.score >= ruleset.mql_threshold and not result.blocked:
                qualified[lead.pk] = moment
                break
    in_period = {pk: at for pk, at in qualified.items() if at >= since}
    return in_period, set(qualified)


def brute_outcomes(lead_ids):
    def reached(stages):
        return sum(1 for pk in lead_ids if StageTransition.objects.filter(lead_id=pk, to_stage__in=stages).exists())

    return {
        "mqls": len(lead_ids),
        "offered_to_sales": reached(["mql", "pql", "sal", "sql", "customer"]),
        "accepted": reached(["sal", "sql", "customer"]),
        "reached_sql": reached(["sql", "customer"]),
        "won": reached(["customer"]),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("diff", "settings"),
    [
        ({"update": [{"name": "Demo request", "points": 80}]}, {}),
        ({}, {"mql_threshold": 45}),
        ({"remove": ["Pricing page"]}, {"required_profile_fields": ["title"]}),
    ],
)
def test_the_back_test_equals_a_brute_force_replay(diff, settings):
    now = timezone.now()
    install_current_rules()
    build_history(now)
    ids = dict(ScoringRule.objects.values_list("name", "pk"))
    rules_diff = {}
    if "update" in diff:
        rules_diff["update"] = [{**u, "id": ids[u.pop("name")]} for u in diff["update"]]
    if "remove" in diff:
        rules_diff["remove"] = [ids[name] for name in diff["remove"]]
    candidate, _ = candidate_ruleset(rules_diff=rules_diff, settings=settings)
    current = current_ruleset()
    since, until = now - timedelta(days=120), now - timedelta(days=10)

    answer = backtest_compare(candidate=candidate, current=current, since=since, until=until)

    expected_current, ever_current = brute_force(current, since=since, until=until)
    expected_candidate, ever_candidate = brute_force(candidate, since=since, until=until)
    assert expected_current != expected_candidate, "the candidate should change something"
    for side, expected in (("current", expected_current), ("candidate", expected_candidate)):
        assert {k: answer[side][k] for k in brute_outcomes(expected)} == brute_outcomes(expected)
    flips_in = set(expected_candidate) - ever_current
    flips_out = set(expected_current) - ever_candidate
    assert answer["flips_in"]["count"] == len(flips_in)
    assert answer["flips_out"]["count"] == len(flips_out)
    assert {row["lead"] for row in answer["flips_in"]["leads"]} == flips_in
    assert {row["lead"] for row in answer["flips_out"]["leads"]} == flips_out
    for row in answer["flips_in"]["leads"]:
        assert row["would_qualify_at"] == expected_candidate[row["lead"]]


@pytest.mark.django_db
def test_a_higher_threshold_produces_fewer_mqls_and_only_flips_out():
    now = timezone.now()
    install_current_rules(threshold=50)
    build_history(now)
    candidate, _ = candidate_ruleset(settings={"mql_threshold": 80})

    answer = backtest_compare(candidate=candidate, since=now - timedelta(days=365), until=now)

    assert answer["candidate"]["mqls"] < answer["current"]["mqls"]
    assert answer["flips_in"]["count"] == 0
    assert answer["flips_out"]["count"] > 0
    assert answer["timing_changed"] == 0
    candidate_ids = {row["lead"] for row in answer["flips_out"]["leads"]}
    assert candidate_ids and all(row["score"] < 80 for row in answer["flips_out"]["leads"])

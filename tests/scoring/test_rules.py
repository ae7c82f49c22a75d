"""The pure rule evaluator and validator: no database."""

from datetime import UTC, datetime, timedelta

import pytest

from leads.models import InteractionType
from scoring.rules import (
    DomainLists,
    clamp_to_cap,
    combined_score,
    condition_matches,
    decay_factor,
    dimension_score,
    lead_profile,
    parse_employees,
    pql_reached,
    regex_problem,
    rule_errors,
    value_matches,
)

TYPES = InteractionType.values


@pytest.mark.parametrize(
    ("actual", "operator", "expected", "result"),
    [
        ("Head of Sales", "equals", "head of sales", True),
        ("Head of Sales", "equals", "head", False),
        (30, "equals", "30", True),
        ("true", "equals", True, True),
        ("no", "equals", True, False),
        (True, "equals", True, True),
        ("DE", "in", ["de", "at", "ch"], True),
        ("FR", "in", ["de", "at"], False),
        ("https://x.example/pricing", "contains", "/PRICING", True),
        ("https://x.example/blog", "contains", ["/pricing", "/plans"], False),
        (["vip", "event"], "contains", "vip", True),
        ("ann@corp.example", "endswith", [".example", ".test"], True),
        ("ann@corp.com", "endswith", ".example", False),
        (45, "gte", 30, True),
        ("29", "gte", 30, False),
        (10, "lte", 10, True),
        ("n/a", "gte", 3, False),
        (None, "gte", 3, False),
        ("Ann", "present", True, True),
        ("  ", "present", True, False),
        (None, "present", False, True),
        ("VP Marketing", "regex", r"\bvp\b", True),
        ("Director", "regex", r"\bcto\b", False),
        (None, "contains", "x", False),
    ],
)
def test_every_operator_compares_as_a_marketer_expects(actual, operator, expected, result):
    assert value_matches(actual, operator, expected) is result


def test_interaction_conditions_match_type_and_property():
    webinar = {"interaction_type": "webinar_attended", "property": "minutes", "operator": "gte", "value": 30}
    assert condition_matches(webinar, interaction={"type": "webinar_attended", "properties": {"minutes": 45}})
    assert not condition_matches(webinar, interaction={"type": "webinar_attended", "properties": {"minutes": 5}})
    assert not condition_matches(webinar, interaction={"type": "page_view", "properties": {"minutes": 45}})
    follow_up = {
        "interaction_type": "trade_show_visit",
        "property": "follow_up_requested",
        "operator": "equals",
        "value": True,
    }
    assert condition_matches(
        follow_up, interaction={"type": "trade_show_visit", "properties": {"follow_up_requested": "yes"}}
    )
    nested = {"interaction_type": "page_view", "property": "utm.source", "operator": "equals", "value": "linkedin"}
    assert condition_matches(nested, interaction={"type": "page_view", "properties": {"utm": {"source": "LinkedIn"}}})
    any_download = {"source": "interaction", "interaction_type": "content_download"}
    assert condition_matches(any_download, interaction={"type": "content_download", "properties": {}})
    assert not condition_matches(any_download, lead={"email": "a@b.example"})


def test_profile_conditions_use_derived_fields():
    lists = DomainLists(
        free_mail=frozenset({"gmail.com"}),
        disposable=frozenset({"mailinator.com"}),
        role_prefixes=frozenset({"info", "sales"}),
        competitors=frozenset({"rival.example"}),
    )
    business = lead_profile({"email": "Ann@Corp.Example", "company_size": "201-1000"}, lists)
    assert business["email_domain"] == "corp.example"
    assert (business["email_domain_kind"], business["is_role_account"], business["is_competitor"]) == (
        "business",
        False,
        False,
    )
    assert business["company_employees"] == 201
    assert lead_profile({"email": "x@gmail.com"}, lists)["email_domain_kind"] == "free"
    assert lead_profile({"email": "x@mailinator.com"}, lists)["email_domain_kind"] == "disposable"
    assert lead_profile({"email": "info+leads@corp.example"}, lists)["is_role_account"] is True
    assert lead_profile({"email": "spy@eu.rival.example"}, lists)["is_competitor"] is True
    assert lead_profile({"email": "a@b.example", "unsubscribed_at": datetime.now(UTC)}, lists)["unsubscribed"] is True
    custom = {"field": "custom.budget", "operator": "gte", "value": 10000}
    assert condition_matches(custom, lead=lead_profile({"email": "a@b.example", "custom_fields": {"budget": "25000"}}))


def test_a_lead_object_works_as_well_as_a_dict():
    class FakeLead:
        email = "ceo@corp.example"
        title = "CEO"

    assert condition_matches({"field": "title", "operator": "regex", "value": r"\bceo\b"}, lead=FakeLead())
    assert condition_matches({"field": "email_domain_kind", "operator": "equals", "value": "business"}, lead=FakeLead())


@pytest.mark.parametrize(("size", "employees"), [("201-1000", 201), ("1k+", 1000), ("50", 50), ("", None), (12, 12)])
def test_company_size_bands_give_their_lower_bound(size, employees):
    assert parse_employees(size) == employees


@pytest.mark.parametrize(
    "pattern", [r"(a+)+$", r"(.*)*x", r"(\w+\s?)*$", r"(a|aa)+(b)\1", "x{1,5000}", "a" * 400, "(unclosed"]
)
def test_expensive_or_invalid_regexes_are_refused(pattern):
    assert regex_problem(pattern) is not None


@pytest.mark.parametrize("pattern", [r"\b(vp|director|head of)\b", r"^sales", r"/pricing(/|$)", r"[a-z]+@corp\.com"])
def test_ordinary_regexes_are_allowed(pattern):
    assert regex_problem(pattern) is None


def _errors(**data):
    base = {"name": "r", "dimension": "engagement", "source": "interaction", "points": 5}
    return rule_errors({**base, **data}, interaction_types=TYPES)


def test_a_valid_interaction_rule_has_no_errors():
    assert _errors(interaction_type="page_view", property="url", operator="contains", value="/pricing") == {}
    assert _errors(interaction_type="form_submit", use_channel_weight=True, points=0) == {}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            {"source": "profile", "field": "shoe_size", "operator": "equals", "value": 42},
            "field",
            "Unknown profile field",
        ),
        (
            {"source": "profile", "field": "is_competitor", "operator": "contains", "value": "x"},
            "operator",
            "does not apply",
        ),
        ({"source": "profile", "field": "company_employees", "operator": "gte", "value": "many"}, "value", "number"),
        ({"source": "profile", "field": "title", "operator": "regex", "value": "(a+)+"}, "value", "too expensive"),
        (
            {"source": "profile", "field": "email_domain_kind", "operator": "equals", "value": "corporate"},
            "value",
            "one of",
        ),
        (
            {
                "source": "profile",
                "field": "title",
                "operator": "present",
                "value": True,
                "dimension": "fit",
                "half_life_days": 3,
            },
            "half_life_days",
            "Only interaction",
        ),
        ({"interaction_type": "fax_received"}, "interaction_type", "Unknown interaction type"),
        ({"interaction_type": ""}, "interaction_type", "needs an interaction_type"),
        ({"interaction_type": "page_view", "operator": "contains", "value": "x"}, "property", "Give the property"),
        (
            {"interaction_type": "page_view", "property": "url", "operator": "like", "value": "x"},
            "operator",
            "Unknown operator",
        ),
        (
            {"interaction_type": "page_view", "property": "url", "operator": "in", "value": "x"},
            "value",
            "non-empty list",
        ),
        ({"interaction_type": "page_view", "points": 5, "max_points": -10}, "max_points", "same sign"),
        ({"interaction_type": "page_view", "points": 5, "max_points": 2}, "max_points", "smaller"),
        ({"interaction_type": "page_view", "points": 0}, "points", "0 points"),
        ({"interaction_type": "page_view", "half_life_days": -2}, "half_life_days", "positive"),
        ({"interaction_type": "page_view", "dimension": "fit", "half_life_days": 7}, "half_life_days", "engagement"),
        ({"interaction_type": "page_view", "use_channel_weight": True}, "use_channel_weight", "form_submit"),
        ({"dimension": "mood", "interaction_type": "page_view"}, "dimension", "fit"),
    ],
)
def test_invalid_rules_get_a_clear_message_on_the_right_field(data, field, words):
    errors = _errors(**data)
    assert field in errors, errors
    assert words in errors[field]


def test_caps_decay_and_the_score_formula():
    assert clamp_to_cap(25, 20) == 20
    assert clamp_to_cap(-25, -20) == -20
    assert clamp_to_cap(7, None) == 7
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert decay_factor(7, start, start + timedelta(days=14)) == pytest.approx(0.25)
    assert decay_factor(None, start, start + timedelta(days=14)) == 1
    assert decay_factor(7, start, start - timedelta(days=1)) == 1
    assert [dimension_score(p) for p in (-5, 0.5, 49.4, 150)] == [0, 1, 49, 100]
    assert combined_score(60, 72, fit_weight=50, engagement_weight=50) == 66
    assert combined_score(100, 0, fit_weight=30, engagement_weight=70) == 30


def test_the_pql_rule_counts_usage_within_the_window_after_a_trial():
    rule = {"enabled": True, "min_usage": 2, "within_days": 7}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    within = [start + timedelta(days=1), start + timedelta(days=6)]
    assert pql_reached(rule, trial_times=[start], usage_times=within)
    assert not pql_reached(
        rule, trial_times=[start], usage_times=[start - timedelta(days=1), start + timedelta(days=8)]
    )
    assert not pql_reached({**rule, "enabled": False}, trial_times=[start], usage_times=within)
    assert not pql_reached(rule, trial_times=[], usage_times=within)


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("contains", "/pricing"),
        ("contains", ["vip", "Gold"]),
        ("regex", r"\bvp\b"),
        ("gte", 30),
        ("lte", "10"),
        ("equals", "Head of Sales"),
        ("equals", "30"),
        ("equals", True),
        ("in", ["de", "at"]),
        ("endswith", ".example"),
        ("present", True),
        ("present", False),
    ],
)
@pytest.mark.parametrize(
    "actual", [None, "", "VP Sales", "https://x.example/pricing", 30, 29.5, "10", True, ["vip"], {"vip": 1}, "DE"]
)
def test_prepared_matchers_agree_with_the_plain_evaluator(operator, expected, actual):
    from scoring.rules import compile_matcher

    assert compile_matcher(operator, expected)(actual) is value_matches(actual, operator, expected)

"""Pure functions: conditions, time windows, rendering (no database)."""

from datetime import UTC, datetime, time
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from nurturing.conditions import ConditionError, condition_validate, interaction_matches, lead_matches
from nurturing.rendering import TemplateError, render_email, template_validate
from nurturing.services.schedule import wait_until, window_next_open

BERLIN = ZoneInfo("Europe/Berlin")


def test_conditions_match_fields_stages_and_interactions_like_scoring_rules():
    lead = SimpleNamespace(score=42, stage="recycled", title="VP Sales", tags=["vip"], custom_fields={"plan": "pro"})
    assert lead_matches({"field": "score", "operator": "gte", "value": 40}, lead)
    assert not lead_matches({"field": "score", "operator": "lte", "value": 40}, lead)
    assert lead_matches({"stage": "recycled"}, lead)
    assert lead_matches({"field": "title", "operator": "regex", "value": r"\bvp\b"}, lead)
    assert lead_matches({"field": "tags", "operator": "contains", "value": "VIP"}, lead)
    assert lead_matches({"field": "custom_fields.plan", "operator": "equals", "value": "Pro"}, lead)
    assert lead_matches({"field": "title", "operator": "not_equals", "value": "CEO"}, lead)
    goal = {"interaction_type": "page_view", "property": "url", "operator": "contains", "value": "/pricing"}
    assert interaction_matches(goal, "page_view", {"url": "https://x.example/Pricing?a=1"})
    assert not interaction_matches(goal, "page_view", {"url": "https://x.example/blog"})
    assert not interaction_matches(goal, "email_click", {"url": "https://x.example/pricing"})


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "salary", "operator": "gte", "value": 1},
        {"interaction_type": "teleport"},
        {"stage": "heaven"},
        {"field": "score", "operator": "gte", "value": "lots"},
        {"field": "title", "operator": "regex", "value": "(a+)+$"},
        {"source": "profile", "interaction_type": "page_view"},
        "score > 3",
    ],
)
def test_malformed_conditions_are_explained(condition):
    with pytest.raises(ConditionError):
        condition_validate(condition)


def test_a_send_window_opens_at_the_next_allowed_local_time():
    friday_night = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, a Friday
    opens = window_next_open(start=time(9), end=time(17), days=[0, 1, 2, 3, 4], now=friday_night, zone=BERLIN)
    assert opens == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)  # Monday 09:00
    monday_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert window_next_open(start=time(9), end=time(17), days=[], now=monday_noon, zone=BERLIN) is None
    # A window across midnight.
    assert window_next_open(start=time(22), end=time(6), days=[], now=friday_night, zone=BERLIN) is None


def test_waits_last_a_duration_or_until_a_weekday_and_time():
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # Friday
    assert (wait_until({"hours": 1.5}, now=now, zone=BERLIN) - now).total_seconds() == 5400
    until = wait_until({"until": {"weekdays": [1], "time": "08:30"}}, now=now, zone=BERLIN)
    assert until == datetime(2026, 12, 1, 8, 30, tzinfo=BERLIN)  # next Tuesday


def test_merge_values_are_escaped_and_cannot_inject_links():
    rendered = render_email(
        subject="Hi {{ lead.first_name }}",
        body='<p>Hi {{ lead.first_name }}</p><a href="{{ lead.company_name }}">site</a>'
        '<a href="https://a.example/x">x</a><a href="mailto:hi@a.example">mail</a>',
        context={"lead.first_name": '<img src=x onerror="alert(1)">', "lead.company_name": "javascript:alert(1)"},
        click_url=lambda i: f"https://t.example/c/{i}",
        open_url="https://t.example/o",
        unsubscribe_url="https://t.example/u",
    )
    assert "<img src=x" not in rendered.html and "&lt;img" in rendered.html
    assert "javascript:" not in rendered.html
    assert rendered.links == ["https://a.example/x"]
    assert 'href="https://t.example/c/0"' in rendered.html and "mailto:hi@a.example" in rendered.html
    assert "https://t.example/u" in rendered.text and rendered.subject.startswith("Hi <img")


@pytest.mark.parametrize(
    "source",
    ["{{ lead.first_name", "{{ lead.__class__ }}", "{{ lead.first_name|upper }}", "<iframe src=x></iframe>"],
)
def test_templates_outside_the_safe_subset_are_rejected(source):
    with pytest.raises(TemplateError):
        template_validate(source, is_html=True)

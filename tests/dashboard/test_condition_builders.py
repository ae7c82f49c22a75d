"""Condition builders in the sequence editor: goals and branch conditions as rows, never JSON."""

import pytest

from leadfunnel.widgets import condition_from_row, condition_to_row, parse_value
from nurturing.models import Sequence, Step
from tests.dashboard.test_marketing_pages import SEQUENCE

pytestmark = pytest.mark.django_db

GOAL_ROWS = {
    "goals-kind": ["interaction", "profile", "stage", "interaction"],
    "goals-field": ["", "score", "", ""],
    "goals-interaction_type": ["page_view", "", "", "demo_request"],
    "goals-property": ["url", "", "", ""],
    "goals-operator": ["contains", "gte", "equals", "equals"],
    "goals-value": ["/pricing", "60", "", ""],
    "goals-stage": ["", "", "sql", ""],
}
BRANCH_STEPS = {
    "step_kind": ["email", "wait", "branch", "email"],
    "step_subject": ["Hi", "", "", "Pricing"],
    "step_body": ["Hello https://a.example", "", "", "<p>See pricing</p>"],
    "step_amount": ["", "2", "", ""],
    "step_unit": ["days", "days", "days", "days"],
    "step_goto": ["", "", "4", ""],
    "step_else_goto": ["", "", "", ""],
    "step_action": ["set_stage"] * 4,
    "step_params": [""] * 4,
    "step_cond-kind": ["interaction", "interaction", "interaction", "interaction"],
    "step_cond-field": [""] * 4,
    "step_cond-interaction_type": ["", "", "email_click", ""],
    "step_cond-property": ["", "", "url", ""],
    "step_cond-operator": ["equals", "equals", "contains", "equals"],
    "step_cond-value": ["", "", "pricing", ""],
    "step_cond-stage": [""] * 4,
}
API_GOALS = [
    {"interaction_type": "page_view", "property": "url", "operator": "contains", "value": "/pricing"},
    {"field": "score", "operator": "gte", "value": 60},
    {"stage": "sql"},
    {"interaction_type": "demo_request"},
]


def test_goal_rows_are_saved_as_the_conditions_the_api_stores(marketer_web, marketer_client):
    response = marketer_web.post("/sequences/new/", {**SEQUENCE, **GOAL_ROWS})

    assert response.status_code == 302
    sequence = Sequence.objects.get(name="Welcome")
    assert sequence.goals == API_GOALS
    # The same goals through the API are stored identically.
    api = marketer_client.post("/api/v1/sequences/", {"name": "Via API", "goals": API_GOALS}, format="json")
    assert Sequence.objects.get(pk=api.json()["id"]).goals == sequence.goals


def test_editing_shows_the_stored_goals_as_rows_and_saving_again_keeps_them(marketer_web):
    marketer_web.post("/sequences/new/", {**SEQUENCE, **GOAL_ROWS})
    sequence = Sequence.objects.get()

    page = marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode()

    assert "Goals (JSON" not in page and "[{&quot;" not in page
    assert page.count('name="goals-kind"') == 4 + 1  # four rows and the blank template row
    assert 'name="goals-value" value="/pricing"' in page and 'name="goals-field" value="score"' in page
    assert '<option value="sql" selected>' in page
    assert marketer_web.post(f"/sequences/{sequence.pk}/edit/", {**SEQUENCE, **GOAL_ROWS}).status_code == 302
    sequence.refresh_from_db()
    assert sequence.goals == API_GOALS


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            {"goals-kind": ["profile"], "goals-field": ["salary"], "goals-operator": ["gte"], "goals-value": ["1"]},
            "Unknown lead field 'salary'",
        ),
        (
            {"goals-kind": ["profile"], "goals-field": ["score"], "goals-operator": ["gte"], "goals-value": ["lots"]},
            "The operator 'gte' needs a number as 'value'.",
        ),
        (
            {"goals-kind": ["interaction"], "goals-interaction_type": [""], "goals-property": ["url"]},
            "Unknown interaction type ''.",
        ),
    ],
)
def test_a_bad_goal_row_is_refused_with_the_apis_message_and_nothing_is_saved(
    marketer_web, marketer_client, rows, message
):
    response = marketer_web.post("/sequences/new/", {**SEQUENCE, **rows})

    assert response.status_code == 400
    assert f"Goal 1: {message}" in response.content.decode().replace("&#x27;", "'")
    assert not Sequence.objects.exists()
    api = marketer_client.post(
        "/api/v1/sequences/",
        {"name": "X", "goals": [condition_from_row({p[6:]: v[0] for p, v in rows.items()})]},
        format="json",
    )
    assert api.status_code == 400 and f"Goal 1: {message}" in api.json()["message"]


def test_a_branch_condition_row_is_saved_in_the_apis_shape_and_shown_again(marketer_web):
    response = marketer_web.post("/sequences/new/", {**SEQUENCE, **BRANCH_STEPS})

    assert response.status_code == 302
    branch = Step.objects.get(kind="branch")
    assert branch.config == {
        "condition": {"interaction_type": "email_click", "property": "url", "operator": "contains", "value": "pricing"},
        "goto": 4,
    }
    page = marketer_web.get(f"/sequences/{branch.sequence_id}/edit/").content.decode()
    assert 'name="step_cond-value" value="pricing"' in page and '<option value="email_click" selected>' in page


def test_a_bad_branch_condition_is_reported_on_its_step(marketer_web):
    data = {**SEQUENCE, **BRANCH_STEPS, "step_cond-operator": ["equals", "equals", "regex", "equals"]}
    data["step_cond-value"] = ["", "", "(a+)+$", ""]

    response = marketer_web.post("/sequences/new/", data)

    body = response.content.decode()
    assert response.status_code == 400 and "Step 3: condition: value:" in body
    assert not Sequence.objects.exists()


def test_values_are_typed_like_the_api_expects():
    assert parse_value("60", "gte") == 60 and parse_value("2.5", "equals") == 2.5
    assert parse_value("DE, AT ,", "in") == ["DE", "AT"]
    assert parse_value("true", "equals") is True and parse_value("/pricing", "contains") == "/pricing"
    assert parse_value("anything", "present") is None
    for condition in API_GOALS:
        assert condition_from_row(condition_to_row(condition)) == condition


def test_the_sequence_page_reads_goals_and_branches_as_text_not_json(marketer_web):
    marketer_web.post("/sequences/new/", {**SEQUENCE, **BRANCH_STEPS, **GOAL_ROWS})
    sequence = Sequence.objects.get()

    page = marketer_web.get(f"/sequences/{sequence.pk}/").content.decode()

    assert "page_view where url contains /pricing" in page and "score gte 60" in page
    assert "stage is sql" in page and "<li>demo_request</li>" in page
    assert "if email_click where url contains pricing go to step 4" in page
    assert "{&#x27;" not in page and "{'" not in page

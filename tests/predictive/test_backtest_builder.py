"""The back-test page's rule changes are rows, turned into the API's rules_diff (no JSON typed)."""

import pytest

from scoring.models import ScoringRule
from scoring.predictive.models import BacktestJob
from tests.predictive.test_backtest import install_current_rules

PAGE = "/scoring/insights/"
API = "/api/v1/scoring/backtest/"


@pytest.fixture
def marketer_browser(client, marketer):
    client.force_login(marketer)
    return client


def _rows(first, second, **extra):
    return {
        "change_rule": [str(first.pk), ""],
        "change_points": ["40", ""],
        "change_active": ["", ""],
        "remove_rule": [str(second.pk)],
        "add_name": ["Pricing page", "Spanish speakers"],
        "add_dimension": ["engagement", "fit"],
        "add_points": ["15", "-5"],
        "add_cond-kind": ["interaction", "profile"],
        "add_cond-field": ["", "country"],
        "add_cond-interaction_type": ["page_view", ""],
        "add_cond-property": ["url", ""],
        "add_cond-operator": ["contains", "in"],
        "add_cond-value": ["/pricing", "ES, MX"],
        "add_cond-stage": ["", ""],
        **extra,
    }


@pytest.mark.django_db
def test_the_page_offers_builders_and_no_json_box(marketer_browser):
    install_current_rules()
    html = marketer_browser.get(PAGE).content.decode()

    assert 'name="rules_diff"' not in html and "JSON" not in html
    assert 'name="change_rule"' in html and 'name="add_cond-kind"' in html and "condition_builder.js" in html
    assert all(rule.name in html for rule in ScoringRule.objects.all())


@pytest.mark.django_db
def test_rows_become_the_rules_diff_the_api_would_store(marketer_browser, marketer_client):
    install_current_rules()
    first, second = ScoringRule.objects.order_by("pk")[:2]

    response = marketer_browser.post(f"{PAGE}backtest/", _rows(first, second))

    assert response.status_code == 302
    job = BacktestJob.objects.get()
    expected = {
        "update": [{"id": first.pk, "points": 40}],
        "remove": [second.pk],
        "add": [
            {
                "name": "Pricing page",
                "dimension": "engagement",
                "source": "interaction",
                "interaction_type": "page_view",
                "property": "url",
                "operator": "contains",
                "value": "/pricing",
                "points": 15,
            },
            {
                "name": "Spanish speakers",
                "dimension": "fit",
                "source": "profile",
                "field": "country",
                "operator": "in",
                "value": ["ES", "MX"],
                "points": -5,
            },
        ],
    }
    assert job.params["rules_diff"] == expected
    api = marketer_client.post(API, {"rules_diff": expected}, format="json")
    assert api.status_code in (200, 201, 202), api.json()
    assert BacktestJob.objects.order_by("-pk").first().params["rules_diff"] == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"add_cond-field": ["", "shoe_size"]}, "rules_diff.add[1].field: Unknown profile field"),
        ({"add_points": ["15", "lots"]}, "rules_diff.add[1].points"),
        ({"add_cond-interaction_type": ["teleport", ""]}, "rules_diff.add[0].interaction_type"),
    ],
)
def test_a_bad_row_is_refused_with_the_apis_message_and_no_job_is_created(
    marketer_browser, marketer_client, extra, message
):
    install_current_rules()
    first, second = ScoringRule.objects.order_by("pk")[:2]

    response = marketer_browser.post(f"{PAGE}backtest/", _rows(first, second, **extra), follow=True)

    assert message in response.content.decode().replace("&#x27;", "'")
    assert not BacktestJob.objects.exists()


@pytest.mark.django_db
def test_a_refused_back_test_shows_the_rows_as_typed(marketer_browser):
    install_current_rules()
    first, second = ScoringRule.objects.order_by("pk")[:2]

    response = marketer_browser.post(f"{PAGE}backtest/", _rows(first, second, **{"add_cond-field": ["", "shoe_size"]}))

    assert response.status_code == 400
    html = response.content.decode()
    assert "rules_diff.add[1].field: Unknown profile field" in html.replace("&#x27;", "'")
    assert 'name="add_name" value="Spanish speakers"' in html and 'name="add_cond-field" value="shoe_size"' in html
    assert (
        f'<option value="{first.pk}" selected>' in html
        and 'name="change_points" type="number" step="any" value="40"' in html
    )
    assert f'<option value="{second.pk}" selected>{second.name}</option>' in html
    assert not BacktestJob.objects.exists()

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.models import ScoringSettings
from scoring.predictive.models import BacktestJob
from tests.predictive.test_backtest import build_history, install_current_rules

PAGE = "/scoring/insights/"


@pytest.fixture
def marketer_browser(client, marketer):
    client.force_login(marketer)
    return client


@pytest.mark.django_db
def test_the_insights_page_is_for_marketers(client, sales_rep):
    assert client.get(PAGE).status_code == 302  # to the login page
    client.force_login(sales_rep)
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}backtest/", {"mql_threshold": "40"}).status_code == 403
    assert not BacktestJob.objects.exists()


@pytest.mark.django_db
def test_a_marketer_back_tests_a_threshold_compares_and_applies_it(marketer_browser):
    now = timezone.now()
    install_current_rules()
    build_history(now, n=15)

    response = marketer_browser.post(
        f"{PAGE}backtest/", {"mql_threshold": "45", "since": (now - timedelta(days=200)).date().isoformat()}
    )
    assert response.status_code == 302
    job = BacktestJob.objects.get()
    assert job.status == "done"
    page = marketer_browser.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="backtest-{job.pk}"' in html and "Apply this candidate" in html
    assert f"<td>{job.result['candidate']['mqls']}</td>" in html
    assert 'id="channel-quality-table"' in html

    applied = marketer_browser.post(f"{PAGE}backtest/{job.pk}/apply/", follow=True)
    assert applied.status_code == 200
    assert ScoringSettings.objects.get().mql_threshold == 45
    assert "now the live scoring model" in applied.content.decode()


@pytest.mark.django_db
def test_bad_back_test_input_on_the_page_is_shown_and_stores_nothing(marketer_browser):
    install_current_rules()
    response = marketer_browser.post(f"{PAGE}backtest/", {"mql_threshold": "high"}, follow=True)
    assert "must be a whole number" in response.content.decode()
    response = marketer_browser.post(
        f"{PAGE}backtest/", {"change_rule": ["123456"], "change_points": ["5"], "change_active": [""]}, follow=True
    )
    assert "rules_diff.update[0]: give the id of an existing rule." in response.content.decode()
    assert not BacktestJob.objects.exists()

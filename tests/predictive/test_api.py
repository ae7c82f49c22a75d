from datetime import timedelta

import pytest
from django.utils import timezone

from leadfunnel.models import AuditEvent
from scoring.models import RecomputeJob, ScoringRule, ScoringSettings
from scoring.predictive.backtest import backtest_create
from scoring.predictive.models import BacktestJob, PredictiveModel
from scoring.predictive.runs import predictive_model_request, predictive_model_train
from scoring.predictive.tasks import recompute_backtest_resume, train_predictive_model
from scoring.services import rule_update
from tests.factories import LeadFactory
from tests.predictive.histories import planted_history
from tests.predictive.test_backtest import build_history, install_current_rules

TRAIN = "/api/v1/scoring/predictive/train/"
STATUS = "/api/v1/scoring/predictive/"
BACKTEST = "/api/v1/scoring/backtest/"
QUALITY = "/api/v1/scoring/channel-quality/"


@pytest.mark.django_db
def test_sales_reps_may_not_train_back_test_or_read_channel_quality(sales_client):
    assert sales_client.post(TRAIN, {}, format="json").status_code == 403
    assert sales_client.post(BACKTEST, {"settings": {"mql_threshold": 40}}, format="json").status_code == 403
    assert sales_client.get(QUALITY).status_code == 403
    assert not PredictiveModel.objects.exists() and not BacktestJob.objects.exists()


@pytest.mark.django_db
def test_anonymous_callers_get_401(anon_client):
    assert anon_client.get(STATUS).status_code == 401
    assert anon_client.post(TRAIN, {}, format="json").status_code == 401


@pytest.mark.django_db
def test_training_on_an_empty_history_reports_not_enough_data(
    marketer_client, sales_client, django_capture_on_commit_callbacks
):
    LeadFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(TRAIN, {}, format="json")
    assert response.status_code == 202
    assert response.json()["version"] == 1

    status = sales_client.get(STATUS)
    assert status.status_code == 200
    body = status.json()
    assert body["enabled"] is False and body["active"] is None
    assert body["latest"]["status"] == "insufficient_data"
    assert body["message"].startswith("Not enough data: 0 customers")
    assert body["min_outcomes"] == 30


@pytest.mark.postgres
@pytest.mark.django_db
def test_training_through_the_api_activates_a_model_and_leads_show_their_factors(
    marketer_client, sales_client, settings, django_capture_on_commit_callbacks
):
    settings.PREDICTIVE_MIN_OUTCOMES = 10
    now = timezone.now()
    planted = planted_history(now=now, n=500, days=330)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            TRAIN, {"horizon_days": 60, "snapshot_days": 30, "max_snapshots": 6}, format="json"
        )
    assert response.status_code == 202

    status = sales_client.get(STATUS).json()
    assert status["enabled"] is True
    assert status["active"]["metrics"]["auc"] > 0.8
    assert status["active"]["params"]["horizon_days"] == 60
    lead_id = sorted(planted.strong_ids - planted.customer_ids)[0]
    prediction = sales_client.get(f"/api/v1/leads/{lead_id}/prediction/")
    assert prediction.status_code == 200
    body = prediction.json()
    assert body["model"]["version"] == 1
    assert 0 < body["predicted_probability"] < 1
    assert body["factors"] and {"feature", "label", "contribution", "direction"} <= set(body["factors"][0])


@pytest.mark.django_db
def test_training_parameters_are_validated(marketer_client):
    response = marketer_client.post(TRAIN, {"target": "revenue", "horizon_days": 2}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"target", "horizon_days"}
    assert not PredictiveModel.objects.exists()


@pytest.mark.django_db
def test_a_second_training_request_reuses_the_queued_run(marketer_client):
    first = marketer_client.post(TRAIN, {}, format="json")  # on_commit not executed: stays queued
    second = marketer_client.post(TRAIN, {}, format="json")
    assert first.status_code == second.status_code == 202
    assert first.json()["version"] == second.json()["version"]
    assert PredictiveModel.objects.count() == 1


@pytest.mark.django_db
def test_prediction_of_an_unknown_lead_is_404_and_without_a_model_says_why(sales_client):
    assert sales_client.get("/api/v1/leads/999999/prediction/").status_code == 404
    lead = LeadFactory()
    body = sales_client.get(f"/api/v1/leads/{lead.pk}/prediction/").json()
    assert body["predicted_probability"] is None and body["model"] is None
    assert body["message"] == "No predictive model is active yet."


@pytest.mark.django_db
def test_a_small_back_test_answers_right_away_and_is_stored(marketer_client):
    now = timezone.now()
    install_current_rules()
    build_history(now)
    response = marketer_client.post(
        BACKTEST,
        {"settings": {"mql_threshold": 45}, "since": (now - timedelta(days=120)).date().isoformat()},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "done"
    assert body["result"]["candidate"]["mql_threshold"] == 45
    assert body["result"]["candidate"]["mqls"] >= body["result"]["current"]["mqls"]
    assert body["progress"]["done"] == body["progress"]["total"] > 0
    stored = marketer_client.get(f"{BACKTEST}{body['id']}/").json()
    assert stored["result"] == body["result"]


@pytest.mark.django_db
def test_a_big_back_test_runs_as_a_job_with_progress(marketer_client, settings, django_capture_on_commit_callbacks):
    settings.BACKTEST_SYNC_INTERACTIONS = 0
    now = timezone.now()
    install_current_rules()
    build_history(now, n=20)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = marketer_client.post(
            BACKTEST,
            {
                "rules_diff": {
                    "add": [
                        {
                            "name": "Any email open",
                            "dimension": "engagement",
                            "source": "interaction",
                            "interaction_type": "email_open",
                            "points": 30,
                        }
                    ]
                }
            },
            format="json",
        )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert len(callbacks) == 1
    job = BacktestJob.objects.get(pk=response.json()["id"])
    assert job.status == "done"
    assert job.progress_done == job.progress_total == 20
    assert job.result["candidate"]["mqls"] >= job.result["current"]["mqls"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "dimension": "fit",
                        "source": "profile",
                        "field": "shoe_size",
                        "operator": "equals",
                        "value": 1,
                        "points": 5,
                    }
                ]
            },
            "rules[0].field: Unknown profile field",
        ),
        ({"rules": [], "rules_diff": {}}, "Give either rules or rules_diff, not both."),
        ({"rules_diff": {"remove": [123456]}}, "rules_diff.remove: there is no rule 123456."),
        ({"settings": {"mql_threshold": "high"}}, "settings: mql_threshold: Must be a whole number"),
        ({"settings": {"colour": "red"}}, "settings: colour: Unknown setting"),
        ({"since": "2026-05-01", "until": "2026-04-01"}, "since must be before until."),
        ({"since": "yesterday"}, "since must be a date"),
    ],
)
def test_bad_back_test_input_is_a_clear_400_and_stores_nothing(marketer_client, payload, message):
    install_current_rules()
    response = marketer_client.post(BACKTEST, payload, format="json")
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert not BacktestJob.objects.exists()


@pytest.mark.django_db
def test_channel_quality_answers_and_refuses_unknown_groupings(marketer_client):
    ok = marketer_client.get(QUALITY, {"group_by": "source", "since": "2026-01-01"})
    assert ok.status_code == 200
    assert ok.json()["group_by"] == "source" and ok.json()["groups"] == []
    bad = marketer_client.get(QUALITY, {"group_by": "shoe"})
    assert bad.status_code == 400
    assert "group_by must be one of" in bad.json()["message"]


@pytest.mark.django_db
def test_applying_a_back_test_changes_the_live_rules_once_and_queues_one_recompute(
    marketer_client, sales_client, django_capture_on_commit_callbacks
):
    now = timezone.now()
    install_current_rules()
    build_history(now, n=10)
    demo = ScoringRule.objects.get(name="Demo request")
    pricing = ScoringRule.objects.get(name="Pricing page")
    job = marketer_client.post(
        BACKTEST,
        {
            "rules_diff": {"update": [{"id": demo.pk, "points": 70}], "remove": [pricing.pk]},
            "settings": {"mql_threshold": 55},
        },
        format="json",
    ).json()
    url = f"{BACKTEST}{job['id']}/apply/"
    assert sales_client.post(url).status_code == 403

    with django_capture_on_commit_callbacks(execute=False):
        response = marketer_client.post(url)

    assert response.status_code == 200, response.json()
    assert response.json()["applied_at"]
    demo.refresh_from_db()
    assert demo.points == 70
    assert not ScoringRule.objects.filter(pk=pricing.pk).exists()
    assert ScoringSettings.objects.get().mql_threshold == 55
    assert RecomputeJob.objects.filter(status="pending").count() == 1
    assert AuditEvent.objects.filter(action="scoring.backtest_applied").count() == 1
    again = marketer_client.post(url)
    assert again.status_code == 409 and "already applied" in again.json()["message"]


@pytest.mark.django_db
def test_a_back_test_is_not_applied_after_the_rules_changed(marketer_client):
    install_current_rules()
    build_history(timezone.now(), n=5)
    job = marketer_client.post(BACKTEST, {"settings": {"mql_threshold": 40}}, format="json").json()
    rule_update(rule=ScoringRule.objects.first(), points=33, recompute=False)

    response = marketer_client.post(f"{BACKTEST}{job['id']}/apply/")

    assert response.status_code == 409
    assert "changed since this back-test" in response.json()["message"]


@pytest.mark.django_db
def test_the_weekly_task_trains_a_run_left_queued_and_never_trains_one_twice():
    LeadFactory.create_batch(2)
    stuck, _ = predictive_model_request()  # its message never reached a worker

    train_predictive_model.delay()

    stuck.refresh_from_db()
    assert stuck.status == "insufficient_data"
    assert PredictiveModel.objects.count() == 1
    assert predictive_model_train(model_id=stuck.pk) is None  # already claimed: nothing happens


@pytest.mark.django_db
def test_back_tests_whose_message_was_lost_or_whose_worker_died_are_run_again():
    now = timezone.now()
    install_current_rules()
    build_history(now, n=5)
    lost = backtest_create(user=None, settings={"mql_threshold": 40}, since=now - timedelta(days=90), until=now)
    died = backtest_create(user=None, settings={"mql_threshold": 40}, since=now - timedelta(days=90), until=now)
    fresh = backtest_create(user=None, settings={"mql_threshold": 40}, since=now - timedelta(days=90), until=now)
    BacktestJob.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=6))
    BacktestJob.objects.filter(pk=died.pk).update(status="running", started_at=now - timedelta(hours=1))

    assert sorted(recompute_backtest_resume.delay().get()) == sorted([lost.pk, died.pk])

    statuses = dict(BacktestJob.objects.values_list("pk", "status"))
    assert statuses == {lost.pk: "done", died.pk: "done", fresh.pk: "pending"}

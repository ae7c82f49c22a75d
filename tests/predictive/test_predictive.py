import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import Lead
from scoring.predictive.features import Vocabulary
from scoring.predictive.models import PredictiveModel
from scoring.predictive.prediction import lead_prediction, write_probabilities
from scoring.predictive.runs import predictive_model_train_now
from scoring.predictive.training import TrainingParams, _fit, precision_at_top
from tests.factories import InteractionFactory, LeadFactory
from tests.predictive.histories import planted_history

PARAMS = {"horizon_days": 60, "snapshot_days": 30, "max_snapshots": 6, "min_outcomes": 10}


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_model_finds_a_planted_signal_on_the_held_out_period():
    now = timezone.now()
    planted = planted_history(now=now, n=500, days=330)

    row = predictive_model_train_now(params=PARAMS, now=now)

    assert row.status == PredictiveModel.Status.ACTIVE, row.message
    assert row.metrics["auc"] > 0.8
    assert row.metrics["precision_at_decile"] > 2 * row.metrics["base_rate"]
    assert row.metrics["n_test"] > 0 and row.metrics["n_train"] > row.metrics["n_test"]
    coef = dict(zip(row.feature_names, row.coefficients["coef"], strict=True))
    assert coef["title_vp"] > 0
    assert coef["count:demo_request"] + coef["fresh:demo_request"] > 0
    # Every lead now carries a probability; strong open leads rank above weak ones.
    assert not Lead.objects.filter(predicted_probability=None).exists()
    open_leads = Lead.objects.exclude(stage="customer")
    strong = [p for pk, p in open_leads.values_list("pk", "predicted_probability") if pk in planted.strong_ids]
    weak = [p for pk, p in open_leads.values_list("pk", "predicted_probability") if pk not in planted.strong_ids]
    assert np.mean(strong) > np.mean(weak)
    assert set(Lead.objects.filter(stage="customer").values_list("predicted_probability", flat=True)) == {1.0}


@pytest.mark.django_db
def test_with_no_outcomes_the_model_says_not_enough_data_and_stays_off():
    now = timezone.now()
    planted_history(now=now, n=80, days=300, with_outcomes=False)

    row = predictive_model_train_now(params=PARAMS, now=now)

    assert row.status == PredictiveModel.Status.INSUFFICIENT_DATA
    assert row.message.startswith("Not enough data: 0 customers")
    assert "need 10" in row.message
    assert not Lead.objects.exclude(predicted_probability=None).exists()
    assert not PredictiveModel.objects.filter(status="active").exists()


@pytest.mark.django_db
def test_the_stored_json_model_predicts_exactly_what_scikit_learn_predicts():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(np.int8)
    model, estimator = _fit(x, y, c=1.0, names=["a", "b", "c", "d"], vocab=Vocabulary())

    np.testing.assert_allclose(model.probability(x.astype(np.float64)), estimator.predict_proba(x)[:, 1], rtol=1e-5)


def test_precision_at_top_decile_counts_positives_among_the_best_ranked_tenth():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.arange(20, 0, -1, dtype=float)  # rows in order of decreasing score
    assert precision_at_top(y, scores) == 0.5


def test_training_parameters_refuse_unknown_targets():
    with pytest.raises(ValueError, match="target"):
        TrainingParams.from_settings(target="revenue")


@pytest.mark.django_db
def test_probabilities_are_written_set_based_in_one_query_per_batch(django_assert_num_queries):
    leads = LeadFactory.create_batch(3)
    values = {leads[0].pk: 0.25, leads[1].pk: 0.5, leads[2].pk: None}
    with django_assert_num_queries(1):
        assert write_probabilities(values) == 3
    stored = dict(Lead.objects.values_list("pk", "predicted_probability"))
    assert stored == values


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_leads_top_factors_explain_its_probability():
    now = timezone.now()
    planted = planted_history(now=now, n=500, days=330)
    predictive_model_train_now(params=PARAMS, now=now)
    lead = Lead.objects.filter(pk__in=planted.strong_ids).exclude(stage="customer").first()

    answer = lead_prediction(lead=lead, now=now)

    assert answer["model"]["version"] == 1
    assert 0 < answer["probability_now"] < 1
    assert answer["predicted_probability"] == pytest.approx(answer["probability_now"], abs=1e-5)
    features = [f["feature"] for f in answer["factors"]]
    assert len(features) == 5
    ups = {f["feature"] for f in answer["factors"] if f["direction"] == "up"}
    assert ups & {"count:demo_request", "fresh:demo_request", "title_vp"}


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_leads_prediction_takes_the_same_queries_however_long_its_history():
    now = timezone.now()
    planted_history(now=now, n=500, days=330)
    predictive_model_train_now(params=PARAMS, now=now)
    quiet, busy = LeadFactory.create_batch(2)
    InteractionFactory(lead=quiet)
    InteractionFactory.create_batch(60, lead=busy, type="email_open")

    counts = []
    for lead in (quiet, busy):
        with CaptureQueriesContext(connection) as queries:
            lead_prediction(lead=lead, now=now)
        counts.append(len(queries))

    # active model, profile, interactions grouped by type, stage history, free-mail list
    assert counts[0] == counts[1] <= 5

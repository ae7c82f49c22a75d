import pytest

from leads.funnel import can_move
from leads.models import Lead, Opportunity, StageTransition
from scoring.predictive.demo import seed_predictive_history
from scoring.predictive.models import PredictiveModel


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_demo_history_trains_a_meaningful_model_once():
    summary = seed_predictive_history()

    model = PredictiveModel.objects.get()
    assert model.status == "active", summary
    assert model.metrics["auc"] > 0.7
    assert model.metrics["outcomes"]["positives"] >= 30
    customers = Lead.objects.filter(stage="customer").count()
    assert customers >= 30
    assert Opportunity.objects.filter(status="won").count() == customers
    # Every recorded move is a legal one, in time order.
    for from_stage, to_stage in StageTransition.objects.values_list("from_stage", "to_stage").distinct():
        assert can_move(from_stage, to_stage), (from_stage, to_stage)
    leads = Lead.objects.count()

    again = seed_predictive_history()

    assert again.startswith("history already present")
    assert Lead.objects.count() == leads and PredictiveModel.objects.count() == 1

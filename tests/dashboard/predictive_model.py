"""A hand-made active predictive model, so pages can be tested on known factors."""

from django.utils import timezone

from scoring.predictive.features import Vocabulary, feature_names
from scoring.predictive.models import PredictiveModel


def activate_model(weights: dict[str, float]) -> PredictiveModel:
    """An active predictive model whose only non-zero weights are ``weights`` (standardised
    features with mean 0 and scale 1, so a feature's contribution is its value times its weight)."""
    names = feature_names(Vocabulary())
    coef = [weights.get(name, 0.0) for name in names]
    assert all(name in names for name in weights)
    return PredictiveModel.objects.create(
        version=1,
        status=PredictiveModel.Status.ACTIVE,
        feature_names=names,
        coefficients={
            "mean": [0.0] * len(names),
            "scale": [1.0] * len(names),
            "coef": coef,
            "intercept": -1.0,
            "platt_a": -1.0,
            "platt_b": 0.0,
            "vocab": Vocabulary().as_dict(),
        },
        trained_at=timezone.now(),
    )

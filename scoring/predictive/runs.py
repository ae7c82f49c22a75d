"""Training runs: the life of a PredictiveModel row, from queued to active (or why not).

At most one run is queued or training at a time; the worker claims its row first, so a
redelivered message trains nothing twice. The active model's probabilities are written to
``Lead.predicted_probability`` in the transaction that makes it active.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from .models import PredictiveModel
from .prediction import probabilities_now, write_probabilities
from .training import NotEnoughData, TrainingParams, train

logger = logging.getLogger(__name__)

STALE_TRAINING = timedelta(hours=3)


def predictive_model_request(*, user=None, params: dict | None = None) -> tuple[PredictiveModel, bool]:
    """Queue a training run. Returns (row, created); a run already queued or training is reused."""
    cutoff = timezone.now() - STALE_TRAINING
    PredictiveModel.objects.filter(status=PredictiveModel.Status.TRAINING, created_at__lt=cutoff).update(
        status=PredictiveModel.Status.FAILED, message="Training did not finish (worker stopped); request it again."
    )
    pending = PredictiveModel.objects.filter(
        status__in=[PredictiveModel.Status.QUEUED, PredictiveModel.Status.TRAINING]
    ).first()
    if pending is not None:
        return pending, False
    checked = TrainingParams.from_settings(**(params or {})).as_dict()
    for _attempt in range(3):
        version = (PredictiveModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        try:
            with transaction.atomic():
                row = PredictiveModel.objects.create(version=version, requested_by=user, params=checked)
            return row, True
        except IntegrityError:  # another request took this version number; take the next one
            continue
    raise RuntimeError("could not allocate a model version")


def predictive_model_train(*, model_id: int, now: datetime | None = None) -> PredictiveModel | None:
    """Train the queued model ``model_id``. Claim-then-act: a second call for the same row does nothing."""
    claimed = PredictiveModel.objects.filter(pk=model_id, status=PredictiveModel.Status.QUEUED).update(
        status=PredictiveModel.Status.TRAINING
    )
    if not claimed:
        return None
    row = PredictiveModel.objects.get(pk=model_id)
    try:
        params = TrainingParams.from_settings(**row.params)
        result = train(params=params, now=now)
    except NotEnoughData as exc:
        PredictiveModel.objects.filter(pk=model_id).update(
            status=PredictiveModel.Status.INSUFFICIENT_DATA, message=str(exc), trained_at=timezone.now()
        )
        row.refresh_from_db()
        return row
    except Exception as exc:
        logger.exception("predictive model %s failed", model_id)
        PredictiveModel.objects.filter(pk=model_id).update(
            status=PredictiveModel.Status.FAILED, message=f"Training failed: {exc}", trained_at=timezone.now()
        )
        row.refresh_from_db()
        return row

    probabilities = probabilities_now(result.model, now=now)
    with transaction.atomic():
        PredictiveModel.objects.filter(status=PredictiveModel.Status.ACTIVE).update(
            status=PredictiveModel.Status.RETIRED
        )
        written = write_probabilities(probabilities)
        PredictiveModel.objects.filter(pk=model_id).update(
            status=PredictiveModel.Status.ACTIVE,
            trained_at=timezone.now(),
            metrics=result.metrics,
            feature_names=result.model.names,
            coefficients=result.model.as_json(),
            leads_scored=written,
            message=(
                f"AUC {result.metrics['auc']:.2f} and precision {result.metrics['precision_at_decile']:.0%} "
                f"in the top decile on the held-out period (base rate {result.metrics['base_rate']:.0%})."
            ),
        )
    row.refresh_from_db()
    return row


def predictive_model_train_now(*, user=None, params: dict | None = None, now: datetime | None = None):
    """Queue and train in this process (the beat task, the demo seed, tests)."""
    row, _created = predictive_model_request(user=user, params=params)
    return predictive_model_train(model_id=row.pk, now=now) or row

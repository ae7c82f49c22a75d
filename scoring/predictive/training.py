"""Predictive scoring: the likelihood that a lead becomes a customer, learned from the recorded history.

How it works (README, "Predictive scoring and back-testing"):

* **Point-in-time samples.** For a snapshot instant ``S`` every lead that existed
  before ``S`` and had neither reached the target stage nor been disqualified
  is one sample. Its features are computed from what was known *before* ``S``
  (interaction counts and recency per type, time since first touch, earlier
  stage history) plus its profile, company and channel. Its label: it entered
  the target stage (customer, or SQL) within ``horizon_days`` after ``S``.
  Scoring a lead today uses the very same features with ``S = now``, so
  training and use see the same kind of vector.
* **Time-based split.** The held-out test snapshot is ``now - horizon``
  (the latest one whose outcome is fully known); training snapshots end one
  horizon before it, so no training label looks into the test period.
* **Model.** Standardised features, L2-regularised logistic regression,
  Platt-calibrated (``CalibratedClassifierCV(method="sigmoid")``). Reported on
  the held-out period: AUC, precision in the top decile, base rate, Brier score.
  The model that goes live is then refitted on all labelled samples.
* **Explainable.** A lead's top factors are coefficient × standardised value.
* **Honest when data is short.** Too few outcomes (``PREDICTIVE_MIN_OUTCOMES``
  positives and negatives) and it says so; no probabilities are written.

The features are in :mod:`.features`, applying a trained model in :mod:`.prediction`, and the
life of a training run (queued, training, active) in :mod:`.runs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from leads.models import Stage

from .features import (
    FeatureBuilder,
    LeadProfile,
    StageFacts,
    Vocabulary,
    activity_before,
    build_vocabulary,
    free_mail_domains,
    history_before,
    lead_profiles,
    stage_facts,
)
from .models import PredictiveModel

TARGETS = {
    "customer": (Stage.CUSTOMER,),
    "sql": (Stage.SQL, Stage.CUSTOMER),
}


class NotEnoughData(Exception):
    """Raised when the history holds too few outcomes to train an honest model."""


# --- parameters -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingParams:
    target: str = "customer"
    horizon_days: int = 90
    snapshot_days: int = 30
    max_snapshots: int = 6
    min_outcomes: int = 30
    regularisation_c: float = 1.0

    @classmethod
    def from_settings(cls, **overrides) -> TrainingParams:
        values = {
            "target": getattr(settings, "PREDICTIVE_TARGET", cls.target),
            "horizon_days": getattr(settings, "PREDICTIVE_HORIZON_DAYS", cls.horizon_days),
            "snapshot_days": getattr(settings, "PREDICTIVE_SNAPSHOT_DAYS", cls.snapshot_days),
            "max_snapshots": getattr(settings, "PREDICTIVE_MAX_SNAPSHOTS", cls.max_snapshots),
            "min_outcomes": getattr(settings, "PREDICTIVE_MIN_OUTCOMES", cls.min_outcomes),
            "regularisation_c": getattr(settings, "PREDICTIVE_C", cls.regularisation_c),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        params = cls(**values)
        if params.target not in TARGETS:
            raise ValueError(f"target must be one of {sorted(TARGETS)}")
        if params.horizon_days < 1 or params.snapshot_days < 1 or params.max_snapshots < 1:
            raise ValueError("horizon_days, snapshot_days and max_snapshots must be positive")
        return params

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "horizon_days": self.horizon_days,
            "snapshot_days": self.snapshot_days,
            "max_snapshots": self.max_snapshots,
            "min_outcomes": self.min_outcomes,
            "regularisation_c": self.regularisation_c,
        }


# --- samples -----------------------------------------------------------------------------


@dataclass
class Samples:
    x: np.ndarray
    y: np.ndarray
    lead_ids: np.ndarray
    snapshot: np.ndarray  # index of the snapshot each row belongs to


def _eligible(profile: LeadProfile, facts: StageFacts, as_of: datetime) -> bool:
    if profile.created_at >= as_of:
        return False
    reached = facts.target_at.get(profile.lead_id)
    if reached is not None and reached < as_of:
        return False
    gone = facts.disqualified_at.get(profile.lead_id)
    return gone is None or gone >= as_of


def snapshot_plan(*, now: datetime, first_touch: datetime, params: TrainingParams) -> tuple[list[datetime], datetime]:
    """(training snapshots oldest first, the held-out test snapshot)."""
    horizon = timedelta(days=params.horizon_days)
    step = timedelta(days=params.snapshot_days)
    test_at = now - horizon
    train: list[datetime] = []
    at = test_at - horizon
    while at > first_touch and len(train) < params.max_snapshots:
        train.append(at)
        at -= step
    return sorted(train), test_at


def _samples_at(
    builder: FeatureBuilder,
    profiles: dict[int, LeadProfile],
    facts: StageFacts,
    as_of: datetime,
    horizon: timedelta,
    snapshot_index: int,
) -> Samples:
    lead_ids = sorted(pk for pk, p in profiles.items() if _eligible(p, facts, as_of))
    if not lead_ids:
        width = len(builder.names)
        return Samples(np.zeros((0, width), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0))
    # Feature queries cover every lead; eligibility is applied here (cheaper than an IN list of 100k ids).
    activity = activity_before(as_of)
    history = history_before(as_of)
    x = builder.matrix(lead_ids, profiles, activity, history, as_of)
    end = as_of + horizon
    y = np.array(
        [1 if (t := facts.target_at.get(pk)) is not None and as_of <= t < end else 0 for pk in lead_ids],
        dtype=np.int8,
    )
    return Samples(x, y, np.array(lead_ids, dtype=np.int64), np.full(len(lead_ids), snapshot_index))


def _concat(parts: list[Samples], width: int) -> Samples:
    parts = [p for p in parts if len(p.y)]
    if not parts:
        return Samples(np.zeros((0, width), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0))
    return Samples(
        np.vstack([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.lead_ids for p in parts]),
        np.concatenate([p.snapshot for p in parts]),
    )


# --- training ----------------------------------------------------------------------------


@dataclass
class TrainedModel:
    names: list[str]
    vocab: Vocabulary
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    platt_a: float
    platt_b: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def probability(self, x: np.ndarray) -> np.ndarray:
        # Platt scaling as fitted by scikit-learn: p = 1 / (1 + exp(a·f + b)).
        z = np.clip(self.platt_a * self.decision(x) + self.platt_b, -500, 500)
        return 1.0 / (1.0 + np.exp(z))

    def contributions(self, x_row: np.ndarray) -> np.ndarray:
        return ((x_row - self.mean) / self.scale) * self.coef

    def as_json(self) -> dict:
        return {
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "platt_a": float(self.platt_a),
            "platt_b": float(self.platt_b),
            "vocab": self.vocab.as_dict(),
        }

    @classmethod
    def from_row(cls, row: PredictiveModel) -> TrainedModel:
        data = row.coefficients
        return cls(
            names=list(row.feature_names),
            vocab=Vocabulary.from_dict(data.get("vocab", {})),
            mean=np.array(data["mean"], dtype=np.float64),
            scale=np.array(data["scale"], dtype=np.float64),
            coef=np.array(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            platt_a=float(data["platt_a"]),
            platt_b=float(data["platt_b"]),
        )


def _fit(x: np.ndarray, y: np.ndarray, *, c: float, names: list[str], vocab: Vocabulary):
    """Fit the calibrated model. Returns (TrainedModel, the scikit-learn estimator)."""
    # scikit-learn is imported lazily: it is heavy to import, and only training needs it
    # (a stored model predicts with numpy alone).
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = int(min(3, np.bincount(y, minlength=2).min()))
    base = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    calibrated = CalibratedClassifierCV(base, method="sigmoid", cv=max(2, folds), ensemble=False)
    calibrated.fit(x, y)
    inner = calibrated.calibrated_classifiers_[0]
    scaler = inner.estimator[0]
    logit = inner.estimator[-1]
    platt = inner.calibrators[0]
    model = TrainedModel(
        names=names,
        vocab=vocab,
        mean=scaler.mean_.astype(np.float64),
        scale=scaler.scale_.astype(np.float64),
        coef=logit.coef_[0].astype(np.float64),
        intercept=float(logit.intercept_[0]),
        platt_a=float(platt.a_),
        platt_b=float(platt.b_),
    )
    return model, calibrated


def precision_at_top(y_true: np.ndarray, scores: np.ndarray, fraction: float = 0.1) -> float:
    """Share of positives among the top ``fraction`` of rows by score (at least one row)."""
    if len(y_true) == 0:
        return 0.0
    k = max(1, math.ceil(len(y_true) * fraction))
    order = np.argsort(-scores, kind="stable")[:k]
    return float(np.mean(y_true[order]))


@dataclass
class TrainingResult:
    model: TrainedModel
    metrics: dict


def _distinct_outcomes(samples: Samples) -> tuple[int, int]:
    positive_leads = set(samples.lead_ids[samples.y == 1].tolist())
    negative_leads = set(samples.lead_ids.tolist()) - positive_leads
    return len(positive_leads), len(negative_leads)


def train(*, params: TrainingParams, now: datetime | None = None) -> TrainingResult:
    """Build samples from the history, evaluate on the held-out period, fit the live model.

    Raises :class:`NotEnoughData` with a sentence a marketer can read.
    """
    # Lazy for the same reason as in _fit: scikit-learn is heavy to import.
    from sklearn.metrics import brier_score_loss, roc_auc_score

    now = now or timezone.now()
    targets = TARGETS[params.target]
    target_word = "customers" if params.target == "customer" else "SQLs"
    need = max(params.min_outcomes, 3)
    profiles = lead_profiles()
    if not profiles:
        raise NotEnoughData(f"Not enough data: 0 {target_word}, need {need} (there are no leads yet).")
    facts = stage_facts(targets)
    first_touch = min(p.created_at for p in profiles.values())
    train_at, test_at = snapshot_plan(now=now, first_touch=first_touch, params=params)
    vocab = build_vocabulary({pk: p for pk, p in profiles.items() if p.created_at < test_at})
    builder = FeatureBuilder(vocab, free_mail_domains())
    horizon = timedelta(days=params.horizon_days)

    train_parts = [_samples_at(builder, profiles, facts, at, horizon, i) for i, at in enumerate(train_at)]
    train_set = _concat(train_parts, len(builder.names))
    test_set = _samples_at(builder, profiles, facts, test_at, horizon, len(train_at))
    everything = _concat([train_set, test_set], len(builder.names))

    positives, negatives = _distinct_outcomes(everything)
    if positives < need or negatives < need:
        raise NotEnoughData(
            f"Not enough data: {positives} {target_word} and {negatives} leads that did not convert "
            f"within {params.horizon_days} days, need {need} of each."
        )
    train_pos, train_neg = (int((train_set.y == 1).sum()), int((train_set.y == 0).sum()))
    test_pos, test_neg = (int((test_set.y == 1).sum()), int((test_set.y == 0).sum()))
    if min(train_pos, train_neg) < 2 or min(test_pos, test_neg) < 1:
        raise NotEnoughData(
            f"Not enough data: the history needs outcomes both in the training period (before "
            f"{(test_at - horizon).date()}: {train_pos} {target_word}, {train_neg} others) and in the held-out "
            f"period (from {test_at.date()}: {test_pos} {target_word}, {test_neg} others)."
        )

    evaluated, _ = _fit(train_set.x, train_set.y, c=params.regularisation_c, names=builder.names, vocab=vocab)
    test_prob = evaluated.probability(test_set.x.astype(np.float64))
    auc = float(roc_auc_score(test_set.y, test_prob))
    base_rate = float(test_set.y.mean())
    p_top = precision_at_top(test_set.y, test_prob)
    final, _ = _fit(everything.x, everything.y, c=params.regularisation_c, names=builder.names, vocab=vocab)
    metrics = {
        "auc": round(auc, 4),
        "precision_at_decile": round(p_top, 4),
        "base_rate": round(base_rate, 4),
        "lift_at_decile": round(p_top / base_rate, 3) if base_rate else None,
        "brier": round(float(brier_score_loss(test_set.y, test_prob)), 4),
        "n_train": len(train_set.y),
        "n_test": len(test_set.y),
        "outcomes": {"positives": positives, "negatives": negatives},
        "train_outcomes": {"positives": train_pos, "negatives": train_neg},
        "test_outcomes": {"positives": test_pos, "negatives": test_neg},
        "train_snapshots": [at.isoformat() for at in train_at],
        "test_snapshot": test_at.isoformat(),
        "target": params.target,
        "horizon_days": params.horizon_days,
    }
    return TrainingResult(model=final, metrics=metrics)

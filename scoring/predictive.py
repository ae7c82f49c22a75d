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

Features are read set-based: one grouped query over interactions and one over
stage transitions per snapshot, never one query per lead.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from leads.models import Channel, Interaction, InteractionType, Lead, Stage, StageTransition

from .models_predictive import PredictiveModel

logger = logging.getLogger(__name__)

INTERACTION_TYPES: tuple[str, ...] = tuple(InteractionType.values)
# Recency is expressed as freshness exp(-days / RECENCY_DAYS): 1 for "just now", 0 for "never".
RECENCY_DAYS = 30.0
TARGETS = {
    "customer": (Stage.CUSTOMER,),
    "sql": (Stage.SQL, Stage.CUSTOMER),
}
STALE_TRAINING = timedelta(hours=3)
WRITE_BATCH = 5000

SENIORITY = (
    (
        "title_c_level",
        "C-level or founder title",
        re.compile(r"\b(chief|ceo|cto|cfo|cmo|coo|cio|founder|owner|president)\b"),
    ),
    ("title_vp", "Vice-president title", re.compile(r"\b(vp|vice[- ]president|svp|evp)\b")),
    ("title_head_director", "Head or director title", re.compile(r"\b(head|director)\b")),
    ("title_manager", "Manager title", re.compile(r"\bmanager\b")),
    ("title_student", "Student or intern", re.compile(r"\b(student|intern|trainee)\b")),
    ("title_purchasing", "Purchasing title", re.compile(r"\b(purchas\w*|procurement|buyer)\b")),
)
FALLBACK_FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
        "mail.com",
        "yandex.ru",
        "qq.com",
    }
)


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


# --- feature extraction -------------------------------------------------------------------


@dataclass
class Vocabulary:
    """Categorical values seen often enough in training to earn a feature of their own."""

    sources: list[str] = field(default_factory=list)
    industries: list[str] = field(default_factory=list)
    size_bands: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sources": self.sources, "industries": self.industries, "size_bands": self.size_bands}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(
            sources=list(data.get("sources", [])),
            industries=list(data.get("industries", [])),
            size_bands=list(data.get("size_bands", [])),
        )


@dataclass
class LeadProfile:
    lead_id: int
    created_at: datetime
    email_domain: str
    has_first_name: bool
    has_last_name: bool
    has_title: bool
    has_phone: bool
    has_company: bool
    title: str
    size_band: str
    industry: str
    channel: str
    source: str


@dataclass
class StageFacts:
    """Per lead: when it first reached the target and disqualification, for labels and eligibility."""

    target_at: dict[int, datetime]
    disqualified_at: dict[int, datetime]


def _free_mail_domains() -> frozenset[str]:
    try:
        from .selectors import scoring_settings_get

        domains = getattr(scoring_settings_get(), "free_mail_domains", None)
    except Exception:  # the scoring settings may not be migrated yet; fall back to the short list
        domains = None
    if domains:
        return frozenset(d.strip().lower() for d in domains if d)
    return FALLBACK_FREE_MAIL


def feature_names(vocab: Vocabulary) -> list[str]:
    names = [
        "has_first_name",
        "has_last_name",
        "has_title",
        "has_phone",
        "has_company",
        "business_email",
        *[key for key, _label, _rx in SENIORITY],
        *[f"size:{band}" for band in vocab.size_bands],
        *[f"industry:{name}" for name in vocab.industries],
        *[f"channel:{value}" for value in Channel.values],
        *[f"source:{name}" for name in vocab.sources],
        "days_since_first_touch_log",
        "interactions_total_log",
    ]
    for itype in INTERACTION_TYPES:
        names += [f"count:{itype}", f"fresh:{itype}"]
    names += ["stage:times_mql", "stage:times_recycled", "stage:reached_sal", "stage:reached_sql"]
    return names


def feature_label(name: str) -> str:
    """Words for a feature name, as shown in a lead's top factors."""
    fixed = {
        "has_first_name": "First name given",
        "has_last_name": "Last name given",
        "has_title": "Title given",
        "has_phone": "Phone given",
        "has_company": "Company known",
        "business_email": "Business email domain",
        "days_since_first_touch_log": "Time since first touch",
        "interactions_total_log": "Number of interactions",
        "stage:times_mql": "Times it became an MQL before",
        "stage:times_recycled": "Times it was recycled before",
        "stage:reached_sal": "Was accepted by sales before",
        "stage:reached_sql": "Was sales-qualified before",
    }
    if name in fixed:
        return fixed[name]
    for key, label, _rx in SENIORITY:
        if name == key:
            return label
    kind, _, value = name.partition(":")
    words = {
        "size": f"Company size {value}",
        "industry": f"Industry {value}",
        "channel": f"Came in through channel {value}",
        "source": f"Source {value}",
        "count": f"Number of {value.replace('_', ' ')} events",
        "fresh": f"Recent {value.replace('_', ' ')} activity",
    }
    return words.get(kind, name)


def _profiles(lead_ids: list[int] | None = None) -> dict[int, LeadProfile]:
    qs = Lead.objects.all()
    if lead_ids is not None:
        qs = qs.filter(pk__in=lead_ids)
    rows = qs.values_list(
        "pk",
        "created_at",
        "email",
        "first_name",
        "last_name",
        "title",
        "phone",
        "company_id",
        "company_name",
        "company_size",
        "company__size_band",
        "industry",
        "company__industry",
        "channel",
        "source",
    ).order_by()
    profiles = {}
    for (
        pk,
        created_at,
        email,
        first,
        last,
        title,
        phone,
        company_id,
        company_name,
        size,
        company_size,
        industry,
        company_industry,
        channel,
        source,
    ) in rows.iterator(chunk_size=5000):
        profiles[pk] = LeadProfile(
            lead_id=pk,
            created_at=created_at,
            email_domain=email.rpartition("@")[2].lower(),
            has_first_name=bool(first.strip()),
            has_last_name=bool(last.strip()),
            has_title=bool(title.strip()),
            has_phone=bool(phone.strip()),
            has_company=bool(company_id or company_name.strip()),
            title=title.lower(),
            size_band=(size or company_size or "").strip(),
            industry=(industry or company_industry or "").strip().lower(),
            channel=channel or "",
            source=(source or "").strip().lower(),
        )
    return profiles


def _stage_facts(targets: tuple[str, ...], lead_ids: list[int] | None = None) -> StageFacts:
    qs = StageTransition.objects.filter(to_stage__in=[*targets, Stage.DISQUALIFIED])
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    target_at: dict[int, datetime] = {}
    disqualified_at: dict[int, datetime] = {}
    rows = qs.values("lead_id", "to_stage").annotate(first=Min("at")).order_by()
    for row in rows.iterator(chunk_size=5000):
        if row["to_stage"] == Stage.DISQUALIFIED:
            disqualified_at[row["lead_id"]] = row["first"]
        else:
            current = target_at.get(row["lead_id"])
            target_at[row["lead_id"]] = row["first"] if current is None else min(current, row["first"])
    return StageFacts(target_at=target_at, disqualified_at=disqualified_at)


def _activity_before(as_of: datetime, lead_ids: list[int] | None = None) -> dict[int, dict[str, tuple[int, datetime]]]:
    """{lead_id: {type: (count, last occurred_at)}} from interactions strictly before ``as_of``."""
    qs = Interaction.objects.filter(occurred_at__lt=as_of)
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    activity: dict[int, dict[str, tuple[int, datetime]]] = {}
    rows = qs.values_list("lead_id", "type").annotate(n=Count("id"), last=Max("occurred_at")).order_by()
    for lead_id, itype, n, last in rows.iterator(chunk_size=10000):
        activity.setdefault(lead_id, {})[itype] = (n, last)
    return activity


def _history_before(as_of: datetime, lead_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{lead_id: {to_stage: times entered}} from stage transitions strictly before ``as_of``."""
    qs = StageTransition.objects.filter(
        at__lt=as_of, to_stage__in=[Stage.MQL, Stage.PQL, Stage.RECYCLED, Stage.SAL, Stage.SQL]
    )
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    history: dict[int, dict[str, int]] = {}
    for lead_id, stage, n in qs.values_list("lead_id", "to_stage").annotate(n=Count("id")).order_by().iterator():
        history.setdefault(lead_id, {})[stage] = n
    return history


def build_vocabulary(profiles: dict[int, LeadProfile], *, top: int = 10, min_count: int = 5) -> Vocabulary:
    def frequent(values) -> list[str]:
        counts = Counter(v for v in values if v)
        return sorted(v for v, n in counts.most_common(top) if n >= min_count)

    leads = profiles.values()
    return Vocabulary(
        sources=frequent(p.source for p in leads),
        industries=frequent(p.industry for p in leads),
        size_bands=frequent(p.size_band for p in leads),
    )


class FeatureBuilder:
    """Turns profiles plus point-in-time activity into feature vectors (float32)."""

    def __init__(self, vocab: Vocabulary, free_mail: frozenset[str]) -> None:
        self.vocab = vocab
        self.free_mail = free_mail
        self.names = feature_names(vocab)
        self.index = {name: i for i, name in enumerate(self.names)}

    def matrix(
        self,
        lead_ids: list[int],
        profiles: dict[int, LeadProfile],
        activity: dict[int, dict[str, tuple[int, datetime]]],
        history: dict[int, dict[str, int]],
        as_of: datetime,
    ) -> np.ndarray:
        x = np.zeros((len(lead_ids), len(self.names)), dtype=np.float32)
        idx = self.index
        for row, lead_id in enumerate(lead_ids):
            p = profiles[lead_id]
            v = x[row]
            v[idx["has_first_name"]] = p.has_first_name
            v[idx["has_last_name"]] = p.has_last_name
            v[idx["has_title"]] = p.has_title
            v[idx["has_phone"]] = p.has_phone
            v[idx["has_company"]] = p.has_company
            v[idx["business_email"]] = bool(p.email_domain) and p.email_domain not in self.free_mail
            for key, _label, rx in SENIORITY:
                if p.title and rx.search(p.title):
                    v[idx[key]] = 1.0
            for name in (f"size:{p.size_band}", f"industry:{p.industry}", f"channel:{p.channel}", f"source:{p.source}"):
                col = idx.get(name)
                if col is not None:
                    v[col] = 1.0
            first_touch = p.created_at
            acts = activity.get(lead_id, {})
            total = 0
            for itype, (n, last) in acts.items():
                if f"count:{itype}" not in idx:
                    continue
                total += n
                v[idx[f"count:{itype}"]] = math.log1p(n)
                days = max(0.0, (as_of - last).total_seconds() / 86400.0)
                v[idx[f"fresh:{itype}"]] = math.exp(-days / RECENCY_DAYS)
            v[idx["interactions_total_log"]] = math.log1p(total)
            v[idx["days_since_first_touch_log"]] = math.log1p(max(0.0, (as_of - first_touch).total_seconds() / 86400.0))
            hist = history.get(lead_id, {})
            v[idx["stage:times_mql"]] = hist.get(Stage.MQL, 0) + hist.get(Stage.PQL, 0)
            v[idx["stage:times_recycled"]] = hist.get(Stage.RECYCLED, 0)
            v[idx["stage:reached_sal"]] = hist.get(Stage.SAL, 0) > 0
            v[idx["stage:reached_sql"]] = hist.get(Stage.SQL, 0) > 0
        return x


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
    activity = _activity_before(as_of)
    history = _history_before(as_of)
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
    from sklearn.metrics import brier_score_loss, roc_auc_score

    now = now or timezone.now()
    targets = TARGETS[params.target]
    target_word = "customers" if params.target == "customer" else "SQLs"
    need = max(params.min_outcomes, 3)
    profiles = _profiles()
    if not profiles:
        raise NotEnoughData(f"Not enough data: 0 {target_word}, need {need} (there are no leads yet).")
    facts = _stage_facts(targets)
    first_touch = min(p.created_at for p in profiles.values())
    train_at, test_at = snapshot_plan(now=now, first_touch=first_touch, params=params)
    vocab = build_vocabulary({pk: p for pk, p in profiles.items() if p.created_at < test_at})
    builder = FeatureBuilder(vocab, _free_mail_domains())
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


# --- applying a model ----------------------------------------------------------------------


def probabilities_now(model: TrainedModel, *, now: datetime | None = None, lead_ids: list[int] | None = None):
    """{lead_id: probability} as of now. Leads already at the target get 1, disqualified leads 0."""
    now = now or timezone.now()
    profiles = _profiles(lead_ids)
    if not profiles:
        return {}
    ids = lead_ids if lead_ids is not None else None
    # Converted and disqualified leads are not predicted: they are already decided.
    stage_rows = Lead.objects.filter(pk__in=list(profiles)) if ids is not None else Lead.objects.all()
    stages = dict(stage_rows.values_list("pk", "stage").order_by().iterator(chunk_size=10000))
    builder = FeatureBuilder(model.vocab, _free_mail_domains())
    if builder.names != model.names:
        raise ValueError("The stored model's features do not match this version of LeadFunnel; retrain it.")
    open_ids = sorted(pk for pk in profiles if stages.get(pk) not in (Stage.CUSTOMER, Stage.DISQUALIFIED))
    result: dict[int, float] = {}
    if open_ids:
        activity = _activity_before(now, ids)
        history = _history_before(now, ids)
        x = builder.matrix(open_ids, profiles, activity, history, now).astype(np.float64)
        probs = model.probability(x)
        result.update(zip(open_ids, (float(p) for p in probs), strict=True))
    for pk, stage in stages.items():
        if stage == Stage.CUSTOMER:
            result[pk] = 1.0
        elif stage == Stage.DISQUALIFIED:
            result[pk] = 0.0
    return result


def write_probabilities(values: dict[int, float | None]) -> int:
    """Set Lead.predicted_probability set-based: one UPDATE … FROM (VALUES …) per batch."""
    table = Lead._meta.db_table
    items = sorted(values.items())
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(items), WRITE_BATCH):
            batch = items[start : start + WRITE_BATCH]
            placeholders = ", ".join(["(%s, %s)"] * len(batch))
            params: list = []
            for pk, prob in batch:
                params += [int(pk), None if prob is None else round(float(prob), 6)]
            cursor.execute(
                f"WITH v(id, p) AS (VALUES {placeholders}) "  # noqa: S608 - placeholders only; table name is ours
                f"UPDATE {table} SET predicted_probability = CAST(v.p AS DOUBLE PRECISION) "
                f"FROM v WHERE {table}.id = CAST(v.id AS BIGINT)",
                params,
            )
            # SQLite reports -1 for an UPDATE … FROM; every id in the batch exists there anyway.
            written += cursor.rowcount if cursor.rowcount >= 0 else len(batch)
    return written


def clear_probabilities() -> int:
    return Lead.objects.exclude(predicted_probability=None).update(predicted_probability=None)


# --- the records ------------------------------------------------------------------------------


def predictive_model_active() -> PredictiveModel | None:
    return PredictiveModel.objects.filter(status=PredictiveModel.Status.ACTIVE).first()


def predictive_model_latest() -> PredictiveModel | None:
    return PredictiveModel.objects.order_by("-version").first()


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


def lead_prediction(*, lead: Lead, top: int = 5, now: datetime | None = None) -> dict:
    """A lead's probability under the active model and the factors that push it up or down."""
    active = predictive_model_active()
    if active is None:
        latest = predictive_model_latest()
        return {
            "lead": lead.pk,
            "predicted_probability": None,
            "model": None,
            "message": (latest.message if latest and latest.message else "No predictive model is active yet."),
            "factors": [],
        }
    model = TrainedModel.from_row(active)
    now = now or timezone.now()
    profiles = _profiles([lead.pk])
    builder = FeatureBuilder(model.vocab, _free_mail_domains())
    x = builder.matrix([lead.pk], profiles, _activity_before(now, [lead.pk]), _history_before(now, [lead.pk]), now)
    row = x[0].astype(np.float64)
    contributions = model.contributions(row)
    order = np.argsort(-np.abs(contributions), kind="stable")
    factors = []
    for col in order[:top]:
        if contributions[col] == 0:
            continue
        factors.append(
            {
                "feature": model.names[col],
                "label": feature_label(model.names[col]),
                "value": round(float(row[col]), 4),
                "contribution": round(float(contributions[col]), 4),
                "direction": "up" if contributions[col] > 0 else "down",
            }
        )
    decided = lead.stage in (Stage.CUSTOMER, Stage.DISQUALIFIED)
    return {
        "lead": lead.pk,
        "predicted_probability": lead.predicted_probability,
        "probability_now": None if decided else round(float(model.probability(row[None, :])[0]), 6),
        "model": {"version": active.version, "trained_at": active.trained_at, "metrics": active.metrics},
        "message": "",
        "factors": factors,
    }

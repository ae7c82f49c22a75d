"""Applying the active predictive model: probabilities for every lead, and one lead's top factors."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from django.db import connection
from django.utils import timezone

from leads.models import Lead, Stage

from .features import FeatureBuilder, activity_before, feature_label, free_mail_domains, history_before, lead_profiles
from .models import PredictiveModel
from .training import TrainedModel

WRITE_BATCH = 5000


def probabilities_now(model: TrainedModel, *, now: datetime | None = None, lead_ids: list[int] | None = None):
    """{lead_id: probability} as of now. Leads already at the target get 1, disqualified leads 0."""
    now = now or timezone.now()
    profiles = lead_profiles(lead_ids)
    if not profiles:
        return {}
    ids = lead_ids if lead_ids is not None else None
    # Converted and disqualified leads are not predicted: they are already decided.
    stage_rows = Lead.objects.filter(pk__in=list(profiles)) if ids is not None else Lead.objects.all()
    stages = dict(stage_rows.values_list("pk", "stage").order_by().iterator(chunk_size=10000))
    builder = FeatureBuilder(model.vocab, free_mail_domains())
    if builder.names != model.names:
        raise ValueError("The stored model's features do not match this version of LeadFunnel; retrain it.")
    open_ids = sorted(pk for pk in profiles if stages.get(pk) not in (Stage.CUSTOMER, Stage.DISQUALIFIED))
    result: dict[int, float] = {}
    if open_ids:
        activity = activity_before(now, ids)
        history = history_before(now, ids)
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


def predictive_model_active() -> PredictiveModel | None:
    return PredictiveModel.objects.filter(status=PredictiveModel.Status.ACTIVE).first()


def predictive_model_latest() -> PredictiveModel | None:
    return PredictiveModel.objects.order_by("-version").first()


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
    profiles = lead_profiles([lead.pk])
    builder = FeatureBuilder(model.vocab, free_mail_domains())
    x = builder.matrix([lead.pk], profiles, activity_before(now, [lead.pk]), history_before(now, [lead.pk]), now)
    row = x[0].astype(np.float64)
    factors = _top_factors(model, row, top)
    decided = lead.stage in (Stage.CUSTOMER, Stage.DISQUALIFIED)
    return {
        "lead": lead.pk,
        "predicted_probability": lead.predicted_probability,
        "probability_now": None if decided else round(float(model.probability(row[None, :])[0]), 6),
        "model": {"version": active.version, "trained_at": active.trained_at, "metrics": active.metrics},
        "message": "",
        "factors": factors,
    }


def _top_factors(model: TrainedModel, row: np.ndarray, top: int) -> list[dict]:
    """The features that move this row's probability most, each with its direction."""
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
    return factors


def leads_top_factors(*, lead_ids: list[int], top: int = 3, now: datetime | None = None) -> dict[int, list[dict]]:
    """{lead id: its ``top`` predictive factors} under the active model, for a page of leads
    (the sales queue's cards, a lead's page): ``[]`` for each when no model is active.

    Each factor: ``feature``, ``label`` (words), ``value``, ``contribution`` (its push on the
    log-odds) and ``direction`` (``up`` / ``down``). Queries, whatever the number of leads and
    their histories: the active model (1); with one, profiles (1), interactions grouped by
    type (1), stage history (1) and the free-mail list (1).
    """
    if not lead_ids:
        return {}
    active = predictive_model_active()
    if active is None:
        return {pk: [] for pk in lead_ids}
    model = TrainedModel.from_row(active)
    now = now or timezone.now()
    profiles = lead_profiles(list(lead_ids))
    ids = [pk for pk in lead_ids if pk in profiles]
    builder = FeatureBuilder(model.vocab, free_mail_domains())
    if builder.names != model.names or not ids:
        return {pk: [] for pk in lead_ids}
    x = builder.matrix(ids, profiles, activity_before(now, ids), history_before(now, ids), now).astype(np.float64)
    found = {pk: _top_factors(model, x[n], top) for n, pk in enumerate(ids)}
    return {pk: found.get(pk, []) for pk in lead_ids}

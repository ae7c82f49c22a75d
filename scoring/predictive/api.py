"""API for predictive scoring, back-tests and channel quality. Thin views: parse, call, shape."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel import validation
from leadfunnel.errors import ValidationFailed
from leadfunnel.roles import IsMarketer, IsMarketerOrSales
from leads.models import Lead

from . import backtest, channel_quality, prediction, runs, training
from .models import BacktestJob, PredictiveModel
from .tasks import recompute_backtest, train_predictive_model

DEFAULT_PERIOD = timedelta(days=90)


def parse_period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """``[since, until)`` from dates or ISO date-times; default: the last 90 days. 400 on nonsense."""
    return validation.parse_period(since, until, default=DEFAULT_PERIOD)


# --- predictive model ------------------------------------------------------------------------


class PredictiveModelOut(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    trained_at = serializers.DateTimeField(allow_null=True)
    params = serializers.JSONField()
    metrics = serializers.JSONField()
    message = serializers.CharField()
    leads_scored = serializers.IntegerField()
    feature_count = serializers.SerializerMethodField()

    def get_feature_count(self, obj) -> int:
        return len(obj.feature_names or [])


class PredictiveStatusOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    message = serializers.CharField()
    active = PredictiveModelOut(allow_null=True)
    latest = PredictiveModelOut(allow_null=True)
    min_outcomes = serializers.IntegerField()


class PredictiveStatusView(APIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(responses=PredictiveStatusOut, summary="Predictive model: status and held-out metrics")
    def get(self, request):
        active = prediction.predictive_model_active()
        latest = prediction.predictive_model_latest()
        if active is not None:
            message = active.message
        elif latest is not None and latest.message:
            message = latest.message
        else:
            message = "No predictive model has been trained yet."
        data = {
            "enabled": active is not None,
            "message": message,
            "active": active,
            "latest": latest,
            "min_outcomes": training.TrainingParams.from_settings().min_outcomes,
        }
        return Response(PredictiveStatusOut(data).data)


class TrainIn(serializers.Serializer):
    target = serializers.ChoiceField(choices=sorted(training.TARGETS), required=False)
    horizon_days = serializers.IntegerField(min_value=7, max_value=730, required=False)
    snapshot_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    max_snapshots = serializers.IntegerField(min_value=1, max_value=24, required=False)
    regularisation_c = serializers.FloatField(min_value=0.0001, max_value=1000, required=False)


class PredictiveTrainView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        request=TrainIn,
        responses={202: PredictiveModelOut},
        summary="Train the predictive model now (runs in the background)",
    )
    def post(self, request):
        payload = TrainIn(data=request.data or {})
        payload.is_valid(raise_exception=True)
        with transaction.atomic():
            row, _created = runs.predictive_model_request(user=request.user, params=payload.validated_data)
            if row.status == PredictiveModel.Status.QUEUED:
                # Also re-sent for a run still queued (its first message may have been lost):
                # the task claims the row, so it never trains twice.
                transaction.on_commit(lambda: train_predictive_model.delay(row.pk))
        row.refresh_from_db()
        return Response(PredictiveModelOut(row).data, status=status.HTTP_202_ACCEPTED)


class FactorOut(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField()
    value = serializers.FloatField()
    contribution = serializers.FloatField()
    direction = serializers.ChoiceField(choices=["up", "down"])


class LeadPredictionOut(serializers.Serializer):
    lead = serializers.IntegerField()
    predicted_probability = serializers.FloatField(allow_null=True)
    probability_now = serializers.FloatField(allow_null=True, required=False)
    model = serializers.JSONField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    factors = FactorOut(many=True)


class LeadPredictionView(APIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(responses=LeadPredictionOut, summary="A lead's predicted probability and its top factors")
    def get(self, request, pk: int):
        lead = get_object_or_404(Lead, pk=pk)
        return Response(LeadPredictionOut(prediction.lead_prediction(lead=lead)).data)


# --- back-tests -------------------------------------------------------------------------------


class BacktestIn(serializers.Serializer):
    rules = serializers.ListField(child=serializers.DictField(), required=False, max_length=500)
    rules_diff = serializers.DictField(required=False)
    settings = serializers.DictField(required=False)
    since = serializers.CharField(required=False, allow_blank=True)
    until = serializers.CharField(required=False, allow_blank=True)


class BacktestOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.SerializerMethodField()
    since = serializers.SerializerMethodField()
    until = serializers.SerializerMethodField()
    result = serializers.JSONField()
    error = serializers.CharField()
    applied_at = serializers.DateTimeField(allow_null=True)

    def get_progress(self, obj) -> dict:
        return {"done": obj.progress_done, "total": obj.progress_total}

    def get_since(self, obj) -> str:
        return obj.params.get("since", "")

    def get_until(self, obj) -> str:
        return obj.params.get("until", "")


class BacktestCreateView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        request=BacktestIn,
        responses={200: BacktestOut, 202: BacktestOut},
        summary="Back-test a candidate rule set and settings against the recorded history",
    )
    def post(self, request):
        payload = BacktestIn(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        since, until = parse_period(data.get("since"), data.get("until"))
        job = backtest.backtest_create(
            user=request.user,
            rules=data.get("rules"),
            rules_diff=data.get("rules_diff"),
            settings=data.get("settings"),
            since=since,
            until=until,
        )
        limit = getattr(settings, "BACKTEST_SYNC_INTERACTIONS", 20000)
        if backtest.backtest_interactions_in_scope(until=until) <= limit:
            # Small history: answer right away.
            job = backtest.backtest_run(job_id=job.pk) or job
            return Response(BacktestOut(job).data, status=status.HTTP_200_OK)
        transaction.on_commit(lambda: recompute_backtest.delay(job.pk))
        return Response(BacktestOut(job).data, status=status.HTTP_202_ACCEPTED)


class BacktestDetailView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(responses=BacktestOut, summary="A back-test's progress and result")
    def get(self, request, pk: int):
        job = get_object_or_404(BacktestJob, pk=pk)
        return Response(BacktestOut(job).data)


class BacktestApplyView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        request=None,
        responses={
            200: BacktestOut,
            409: OpenApiResponse(description="Not finished, already applied, or the rules changed since."),
        },
        summary="Apply a finished back-test's candidate rules and settings to the live model",
    )
    def post(self, request, pk: int):
        job = backtest.backtest_apply(job_id=pk, actor=request.user)
        return Response(BacktestOut(job).data)


# --- channel quality ---------------------------------------------------------------------------


class ChannelQualityView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.STR, description="Date or date-time; default 90 days ago."),
            OpenApiParameter("until", OpenApiTypes.STR, description="Date or date-time; default now."),
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=sorted(channel_quality.GROUP_BY)),
        ],
        responses=inline_serializer(
            "ChannelQuality",
            {
                "since": serializers.DateTimeField(),
                "until": serializers.DateTimeField(),
                "group_by": serializers.CharField(),
                "suggestion_basis": serializers.CharField(),
                "note": serializers.CharField(),
                "total": serializers.JSONField(),
                "groups": serializers.ListField(child=serializers.JSONField()),
            },
        ),
        summary="Channel quality: MQL→SAL acceptance, SQL→won, rejection reasons, suggested points",
    )
    def get(self, request):
        since, until = parse_period(request.query_params.get("since"), request.query_params.get("until"))
        group_by = request.query_params.get("group_by") or "channel"
        if group_by not in channel_quality.GROUP_BY:
            raise ValidationFailed(
                f"group_by must be one of {', '.join(sorted(channel_quality.GROUP_BY))}, got {group_by!r}.",
                fields={"group_by": ["Unknown grouping."]},
            )
        return Response(channel_quality.channel_quality(since=since, until=until, group_by=group_by))


__all__ = [
    "BacktestApplyView",
    "BacktestCreateView",
    "BacktestDetailView",
    "ChannelQualityView",
    "LeadPredictionView",
    "PredictiveStatusView",
    "PredictiveTrainView",
]

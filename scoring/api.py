"""Scoring API: rules (CRUD), settings, full recompute, and a lead's explained score.

Rules, settings and recompute are for marketers and admins; a lead's score is
readable by marketers, sales reps and admins. Views are thin: input serializers
check the shape, services check the meaning and write.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.roles import IsMarketer, IsMarketerOrSales
from leads.models import Lead

from . import selectors, services
from .models import ScoringRule
from .serializers import (
    LeadScoreSerializer,
    RecomputeJobSerializer,
    RuleInputSerializer,
    RuleOutputSerializer,
    SettingsInputSerializer,
    SettingsOutputSerializer,
)


class RuleListCreateApi(ListAPIView):
    """List the scoring rules, or create one (a full recompute follows)."""

    permission_classes = [IsMarketer]
    serializer_class = RuleOutputSerializer

    queryset = ScoringRule.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ScoringRule.objects.none()
        selectors.scoring_settings_get()  # a fresh install shows its default rules
        return selectors.rule_list()

    @extend_schema(request=RuleInputSerializer, responses={201: RuleOutputSerializer})
    def post(self, request):
        serializer = RuleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = services.rule_create(actor=request.user, **serializer.validated_data)
        return Response(RuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    """One rule: read, change (PATCH, partial; PUT, whole) or delete. Changes trigger a recompute."""

    permission_classes = [IsMarketer]

    def _rule(self, pk: int) -> ScoringRule:
        return get_object_or_404(ScoringRule, pk=pk)

    @extend_schema(responses=RuleOutputSerializer)
    def get(self, request, pk: int):
        return Response(RuleOutputSerializer(self._rule(pk)).data)

    def _change(self, request, pk: int, *, partial: bool):
        rule = self._rule(pk)
        serializer = RuleInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        rule = services.rule_update(rule=rule, actor=request.user, **serializer.validated_data)
        return Response(RuleOutputSerializer(rule).data)

    @extend_schema(request=RuleInputSerializer, responses=RuleOutputSerializer)
    def patch(self, request, pk: int):
        return self._change(request, pk, partial=True)

    @extend_schema(request=RuleInputSerializer, responses=RuleOutputSerializer)
    def put(self, request, pk: int):
        return self._change(request, pk, partial=False)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.rule_delete(rule=self._rule(pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SettingsApi(APIView):
    """Thresholds, required profile fields, SLA hours, PQL rule, domain lists and dimension weights."""

    permission_classes = [IsMarketer]

    @extend_schema(responses=SettingsOutputSerializer)
    def get(self, request):
        return Response(SettingsOutputSerializer(selectors.scoring_settings_get()).data)

    @extend_schema(request=SettingsInputSerializer, responses=SettingsOutputSerializer)
    def patch(self, request):
        serializer = SettingsInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        row = services.scoring_settings_update(actor=request.user, **serializer.validated_data)
        return Response(SettingsOutputSerializer(row).data)


# The latest job, or {"id": null, "status": "idle", "done": 0, "total": 0, "promoted": 0} when none ran.
RECOMPUTE_STATUS = inline_serializer(
    "RecomputeStatus",
    {
        "id": serializers.IntegerField(allow_null=True),
        "status": serializers.CharField(help_text="pending, running, done, failed — or idle when no job ran."),
        "done": serializers.IntegerField(),
        "total": serializers.IntegerField(),
        "promoted": serializers.IntegerField(),
        "reason": serializers.CharField(required=False),
        "settings_version": serializers.IntegerField(required=False),
        "created_at": serializers.DateTimeField(required=False, allow_null=True),
        "started_at": serializers.DateTimeField(required=False, allow_null=True),
        "finished_at": serializers.DateTimeField(required=False, allow_null=True),
        "error": serializers.CharField(required=False),
    },
)


class RecomputeApi(APIView):
    """Progress of the latest full recompute (GET), or start one (POST, 202)."""

    permission_classes = [IsMarketer]

    @extend_schema(responses=RECOMPUTE_STATUS)
    def get(self, request):
        job = selectors.recompute_job_latest()
        if job is None:
            return Response({"id": None, "status": "idle", "done": 0, "total": 0, "promoted": 0})
        return Response(RecomputeJobSerializer(job).data)

    @extend_schema(request=None, responses={202: RecomputeJobSerializer})
    def post(self, request):
        job = services.recompute_request(actor=request.user, reason="requested through the API")
        return Response(RecomputeJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class LeadScoreApi(APIView):
    """A lead's score (decay applied as of now) with every contribution that explains it."""

    permission_classes = [IsMarketerOrSales]

    @extend_schema(responses=LeadScoreSerializer)
    def get(self, request, pk: int):
        lead = get_object_or_404(Lead, pk=pk)
        return Response(LeadScoreSerializer(selectors.lead_score_get(lead=lead)).data)

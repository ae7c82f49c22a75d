"""API views for funnel analytics, rep availability, lead assignments, CSV import and export.

Thin views: validate input with a plain serializer, call a selector or service, shape output.
"""

import csv
import hashlib
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.api import page_schema
from leadfunnel.errors import ValidationFailed
from leadfunnel.models import LeadAssignment
from leadfunnel.parsers import FormParser, JSONParser, MultiPartParser
from leadfunnel.roles import IsMarketer, IsMarketerOrSales

from . import analytics, exports, imports, selectors, sla
from .models import Channel, ImportJob, Lead
from .territories import SIZE_BANDS

# --- funnel -------------------------------------------------------------------------------


class FunnelView(APIView):
    """Funnel numbers computed from the stage history (period or cohort view).

    Answers are cached for ``FUNNEL_CACHE_SECONDS`` per query string (analytics may be
    that stale; ``computed_at`` says when they were computed)."""

    permission_classes = [IsMarketer]

    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="Start (YYYY-MM-DD or ISO date-time), default 30 days ago"),
            OpenApiParameter("until", str, description="End, exclusive; a date means the end of that day"),
            OpenApiParameter("group_by", str, enum=list(analytics.GROUP_BY_CHOICES)),
            OpenApiParameter("view", str, enum=["period", "cohort"]),
            OpenApiParameter("segment", int, description="Only the leads of this saved segment"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        ttl = settings.FUNNEL_CACHE_SECONDS
        raw = {k: request.query_params.get(k, "") for k in ("since", "until", "group_by", "view", "segment")}
        key = "funnel:v1:" + hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
        body = cache.get(key) if ttl > 0 else None
        if body is None:
            body = self._compute(request)
            if ttl > 0:
                cache.set(key, body, ttl)
        return Response(body)

    def _compute(self, request) -> dict:
        since, until = analytics.parse_period(request.query_params.get("since"), request.query_params.get("until"))
        group_by = analytics.parse_group_by(request.query_params.get("group_by"))
        view = request.query_params.get("view") or "period"
        segment = request.query_params.get("segment")
        scope = selectors.segment_lead_ids(segment_id=segment) if segment else None
        body = analytics.funnel_report(since=since, until=until, group_by=group_by, view=view, scope=scope)
        body["segment"] = int(segment) if segment else None
        return body


# --- reps ----------------------------------------------------------------------------------


class RepInput(serializers.Serializer):
    is_away = serializers.BooleanField(required=False)
    capacity = serializers.IntegerField(required=False, min_value=0, max_value=100_000)
    manager = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), required=False, allow_null=True
    )
    territories = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=200)
    company_sizes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SIZE_BANDS)), required=False, max_length=len(SIZE_BANDS)
    )


class RepOutput(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    is_away = serializers.BooleanField()
    capacity = serializers.IntegerField()
    manager = serializers.IntegerField(source="manager_id", allow_null=True)
    territories = serializers.ListField(child=serializers.CharField())
    company_sizes = serializers.ListField(child=serializers.CharField())
    last_assigned_at = serializers.DateTimeField(allow_null=True)


class RepUpdateView(APIView):
    """Routing facts of a sales rep. Admins change all; a rep may set their own ``is_away``."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=RepInput, responses=RepOutput)
    def patch(self, request, user_id: int):
        data = RepInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        unknown = set(request.data) - set(RepInput().fields)
        if unknown:
            raise ValidationFailed(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        profile = sla.rep_profile_update(actor=request.user, user_id=user_id, changes=dict(data.validated_data))
        return Response(RepOutput(profile).data)


class AssignmentOutput(serializers.ModelSerializer):
    class Meta:
        model = LeadAssignment
        fields = ["id", "lead", "from_owner", "to_owner", "at", "cause", "reason", "cycle", "actor"]


class LeadAssignmentsView(APIView):
    """A lead's ownership history beyond stage changes (SLA reassignments), oldest first."""

    permission_classes = [IsMarketerOrSales]

    @extend_schema(responses=AssignmentOutput(many=True))
    def get(self, request, lead_id: int):
        get_object_or_404(Lead.objects.only("pk"), pk=lead_id)
        rows = LeadAssignment.objects.filter(lead_id=lead_id).order_by("at", "id")
        return Response(AssignmentOutput(rows, many=True).data)


# --- imports and export ----------------------------------------------------------------------


class ImportInput(serializers.Serializer):
    file = serializers.FileField()
    mapping = serializers.CharField(required=False, allow_blank=True, help_text="JSON: {lead field: CSV column}")
    dry_run = serializers.BooleanField(required=False, default=False)
    source = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Default: import")
    channel = serializers.ChoiceField(
        choices=Channel.choices, required=False, allow_blank=True, help_text="Default: import (event for a trade show)"
    )
    campaign = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Stored as utm_campaign on every lead"
    )


class ImportOutput(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "original_name",
            "mapping",
            "source",
            "channel",
            "campaign",
            "total_rows",
            "processed_rows",
            "progress",
            "created_count",
            "updated_count",
            "error_count",
            "errors_url",
            "created_at",
            "finished_at",
        ]

    def get_progress(self, obj) -> float:
        if obj.status == ImportJob.Status.DONE:
            return 1.0
        return round(obj.processed_rows / obj.total_rows, 4) if obj.total_rows else 0.0

    def get_errors_url(self, obj) -> str:
        return f"/api/v1/imports/{obj.pk}/errors.csv"


class ImportListView(APIView):
    permission_classes = [IsMarketer]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(operation_id="v1_imports_list", responses=page_schema("PaginatedImportList", ImportOutput))
    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(ImportJob.objects.order_by("-created_at", "-id"), request, view=self)
        return paginator.get_paginated_response(ImportOutput(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": ImportInput},
        responses={201: ImportOutput, 200: OpenApiTypes.OBJECT},
        description="Upload a CSV. With dry_run=true the answer (200) is a preview and nothing is stored; "
        "otherwise (201) an import job is created and processed in the background.",
    )
    def post(self, request):
        data = ImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        raw_mapping = data.validated_data.get("mapping") or ""
        try:
            mapping = json.loads(raw_mapping) if raw_mapping.strip() else {}
        except json.JSONDecodeError:
            raise ValidationFailed("mapping is not valid JSON.", fields={"mapping": ["Not JSON."]}) from None
        upload = data.validated_data["file"]
        content = upload.read()
        options = imports.import_options_clean(
            source=data.validated_data.get("source"),
            channel=data.validated_data.get("channel"),
            campaign=data.validated_data.get("campaign"),
        )
        if data.validated_data["dry_run"]:
            return Response(imports.import_preview(content=content, mapping=mapping, options=options))
        job = imports.import_create(
            actor=request.user, content=content, filename=upload.name, mapping=mapping, options=options
        )
        return Response(ImportOutput(job).data, status=status.HTTP_201_CREATED)


class ImportDetailView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(responses=ImportOutput)
    def get(self, request, pk: int):
        return Response(ImportOutput(get_object_or_404(ImportJob, pk=pk)).data)


def _csv_response(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ImportErrorsView(APIView):
    """The per-row error report of an import, as CSV."""

    permission_classes = [IsMarketer]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, pk: int):
        job = get_object_or_404(ImportJob, pk=pk)

        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())
        return _csv_response(
            (writer.writerow(row) for row in imports.import_errors_csv_rows(job)), f"import-{job.pk}-errors.csv"
        )


class LeadExportView(APIView):
    """The filtered lead list as CSV, streamed."""

    permission_classes = [IsMarketer]

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str)
            for name in (
                "email",
                "stage",
                "owner",
                "min_score",
                "max_score",
                "source",
                "channel",
                "company",
                "form",
                "search",
                "created_after",
                "created_before",
                "ordering",
            )
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        qs = exports.leads_export_queryset(request.query_params, request=request)
        return _csv_response(exports.leads_export_rows(qs), "leads.csv")

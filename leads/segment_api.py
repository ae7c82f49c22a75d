"""The segments API: saved segments (smart lists and static lists), their members as the leads
list shows them, and a static list's members added or removed by id, by email or from a CSV.

Marketers and admins write; sales reps read."""

from datetime import timedelta

from django.core.paginator import Page
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import Count, F, Value, Window
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from leadfunnel.api import page_schema
from leadfunnel.roles import IsMarketer, IsMarketerOrSales

from . import selectors, services
from .api import ERRORS, BodyLimitedAPIView, LeadPagination
from .models import Segment
from .segments.conditions import describe_condition
from .serializers import LeadOutputSerializer


class SegmentOutputSerializer(serializers.ModelSerializer):
    lead_count = serializers.SerializerMethodField(help_text="Live number of members.")
    conditions_text = serializers.SerializerMethodField(help_text="The conditions in words.")
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True, allow_null=True)
    # Plain text in the schema: another "kind" enum would collide with the forms' and steps' names.
    kind = serializers.CharField(read_only=True, help_text="smart (a saved filter) or static (a list).")

    class Meta:
        model = Segment
        fields = (
            "id",
            "name",
            "description",
            "kind",
            "definition",
            "conditions_text",
            "lead_count",
            "created_by",
            "created_at",
            "updated_at",
        )

    def get_lead_count(self, segment) -> int:
        counts = self.context.get("counts")
        return counts[segment.pk] if counts is not None else selectors.segment_count(segment)

    def get_conditions_text(self, segment) -> list[str]:
        return [describe_condition(c) for c in (segment.definition or {}).get("conditions", [])]


class SegmentInputSerializer(serializers.Serializer):
    """For the schema; the service validates (one message per bad condition)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.CharField(required=False, help_text="smart (default) or static.")
    definition = serializers.JSONField(required=False)


class MembersInputSerializer(serializers.Serializer):
    leads = serializers.ListField(child=serializers.IntegerField(), required=False)
    emails = serializers.ListField(child=serializers.CharField(), required=False)
    file = serializers.FileField(required=False, help_text="A CSV with an email column (multipart).")


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise exceptions.ParseError("The body must be a JSON object.")
    return dict(request.data)


class SegmentListCreateView(BodyLimitedAPIView):
    def get_permissions(self):
        return [IsMarketer()] if self.request.method == "POST" else [IsMarketerOrSales()]

    @extend_schema(
        operation_id="segments_list", responses={200: page_schema("PaginatedSegmentList", SegmentOutputSerializer)}
    )
    def get(self, request):
        """Segments with their live member counts (all counts in one aggregate query)."""
        paginator = LeadPagination()
        page = paginator.paginate_queryset(selectors.segment_list(), request, view=self)
        counts = selectors.segment_counts(page)
        return paginator.get_paginated_response(
            SegmentOutputSerializer(page, many=True, context={"counts": counts}).data
        )

    @extend_schema(
        operation_id="segments_create",
        request=SegmentInputSerializer,
        responses={201: SegmentOutputSerializer, **ERRORS},
    )
    def post(self, request):
        segment = services.segment_create(data=_body(request), actor=request.user)
        return Response(SegmentOutputSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(BodyLimitedAPIView):
    def get_permissions(self):
        return [IsMarketerOrSales()] if self.request.method == "GET" else [IsMarketer()]

    @extend_schema(operation_id="segments_retrieve", responses={200: SegmentOutputSerializer, **ERRORS})
    def get(self, request, segment_id: int):
        return Response(SegmentOutputSerializer(selectors.segment_get(segment_id=segment_id)).data)

    @extend_schema(
        operation_id="segments_partial_update",
        request=SegmentInputSerializer,
        responses={200: SegmentOutputSerializer, **ERRORS},
    )
    def patch(self, request, segment_id: int):
        segment = selectors.segment_get(segment_id=segment_id)
        segment = services.segment_update(segment=segment, changes=_body(request), actor=request.user)
        return Response(SegmentOutputSerializer(segment).data)

    @extend_schema(operation_id="segments_destroy", responses={204: None, **ERRORS})
    def delete(self, request, segment_id: int):
        services.segment_delete(segment=selectors.segment_get(segment_id=segment_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentLeadsPagination(LeadPagination):
    """The leads list's pages, with the total read from the page's own rows (``COUNT(*) OVER ()``):
    the segment's conditions are evaluated once per page, not once for the count and again for the
    rows. Only a page past the end costs a separate count."""

    def paginate_queryset(self, queryset, request, view=None):
        size = self.get_page_size(request)
        raw = request.query_params.get(self.page_query_param) or "1"
        if not raw.isdigit() or int(raw) < 1:
            raise exceptions.NotFound("Invalid page.")
        number = int(raw)
        start = (number - 1) * size
        rows = list(queryset.annotate(_total=Window(Count("pk")))[start : start + size])
        total = rows[0]._total if rows else queryset.count()
        paginator = DjangoPaginator(queryset, size)
        paginator.count = total  # the cached property, given rather than queried
        if not rows and number > 1:
            raise exceptions.NotFound("Invalid page.")
        self.page = Page(rows, number, paginator)
        self.request = request
        return rows


class SegmentLeadsView(BodyLimitedAPIView):
    """The segment's members, paginated and shown like ``GET /api/v1/leads/`` (newest first)."""

    permission_classes = [IsMarketerOrSales]

    @extend_schema(
        operation_id="segments_leads",
        parameters=[
            OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses={200: page_schema("PaginatedSegmentLeadList", LeadOutputSerializer), **ERRORS},
    )
    def get(self, request, segment_id: int):
        segment = selectors.segment_get(segment_id=segment_id)
        # Newest first, ordered by an expression rather than the column: the page's COUNT(*) OVER ()
        # reads every member anyway, but PostgreSQL costs the LIMIT as if it could stop early and
        # would walk all leads down the created_at index testing each (a static list of 1,000 at
        # 100k leads: 250-400 ms, against 20 ms finding the members first and sorting them).
        newest = (F("created_at") + Value(timedelta(0))).desc()
        leads = selectors.segment_leads(segment=segment, leads=selectors.lead_list()).order_by(newest, "-id")
        paginator = SegmentLeadsPagination()
        page = paginator.paginate_queryset(leads, request, view=self)
        return paginator.get_paginated_response(LeadOutputSerializer(page, many=True).data)


class SegmentMembersView(BodyLimitedAPIView):
    """A static list's members: POST adds (``leads`` ids, ``emails``, or a CSV ``file``),
    DELETE removes (``leads`` ids)."""

    permission_classes = [IsMarketer]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="segments_members_add",
        request=MembersInputSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request, segment_id: int):
        segment = selectors.segment_get(segment_id=segment_id)
        upload = request.FILES.get("file")
        data = request.data
        if upload is not None:
            added, unknown = services.segment_members_import_csv(segment=segment, raw=upload.read(), actor=request.user)
        elif isinstance(data, dict) and "emails" in data:
            emails = data.get("emails")
            if not isinstance(emails, list):
                raise exceptions.ValidationError({"emails": ["A list of email addresses."]})
            added, unknown = services.segment_members_add_emails(segment=segment, emails=emails, actor=request.user)
        elif isinstance(data, dict) and isinstance(data.get("leads"), list):
            added = services.segment_members_add(segment=segment, lead_ids=data["leads"], actor=request.user)
            unknown = []
        else:
            raise exceptions.ValidationError({"leads": ['Send {"leads": [ids]}, {"emails": [...]} or a CSV file.']})
        return Response({"added": added, "unknown_emails": unknown, "lead_count": selectors.segment_count(segment)})

    @extend_schema(
        operation_id="segments_members_remove",
        request=MembersInputSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def delete(self, request, segment_id: int):
        segment = selectors.segment_get(segment_id=segment_id)
        data = request.data
        if not isinstance(data, dict) or not isinstance(data.get("leads"), list):
            raise exceptions.ValidationError({"leads": ['Send {"leads": [ids]}.']})
        removed = services.segment_members_remove(segment=segment, lead_ids=data["leads"], actor=request.user)
        return Response({"removed": removed, "lead_count": selectors.segment_count(segment)})

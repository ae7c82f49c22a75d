"""Privacy API: erase a person, export a person, the suppression list.

``POST /api/v1/leads/<id>/erase/`` and ``GET /api/v1/leads/<id>/export/`` are for marketers and
admins; ``/api/v1/suppressions/`` (list, add, remove) for admins.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.api import page_schema
from leadfunnel.errors import NotFound
from leadfunnel.roles import IsAdmin, IsMarketer

from . import selectors, services
from .api import ERRORS, BodyLimitedAPIView
from .models import Suppression, SuppressionReason
from .privacy import lead_export


class EraseOutput(serializers.Serializer):
    lead = serializers.IntegerField()
    erased = serializers.DictField(child=serializers.IntegerField(), help_text="Rows changed, per kind of data.")


class LeadEraseView(BodyLimitedAPIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        operation_id="leads_erase",
        request=None,
        responses={200: EraseOutput, **ERRORS, 409: OpenApiResponse(description="Already erased.")},
        description="Remove the person's personal data from every table; the anonymised lead keeps the "
        "funnel's history. Answers how many rows of each kind were changed.",
    )
    def post(self, request, lead_id: int):
        removed = services.lead_erase(lead=lead_id, actor=request.user)
        return Response({"lead": lead_id, "erased": removed})


def export_filename(lead_id: int) -> str:
    return f"lead-{lead_id}-export.json"


class LeadExportView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        operation_id="leads_export",
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
        description="Everything held about the person, as one JSON document (a download).",
    )
    def get(self, request, lead_id: int):
        document = lead_export(lead_id=lead_id)
        if not document:
            raise NotFound(f"No lead with id {lead_id}.")
        response = HttpResponse(
            json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{export_filename(lead_id)}"'
        return response


class SuppressionOutput(serializers.ModelSerializer):
    address = serializers.CharField(source="hint", help_text="Masked address; blank for an erased person.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Suppression
        fields = ("id", "address", "reason", "created_at", "created_by")


class SuppressionInput(serializers.Serializer):
    email = serializers.EmailField()
    reason = serializers.ChoiceField(choices=SuppressionReason.choices, default=SuppressionReason.MANUAL)


class SuppressionPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class SuppressionListView(BodyLimitedAPIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="suppressions_list",
        responses=page_schema("PaginatedSuppressionList", SuppressionOutput),
    )
    def get(self, request):
        paginator = SuppressionPagination()
        rows = selectors.suppression_list()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(SuppressionOutput(page, many=True).data)

    @extend_schema(
        operation_id="suppressions_create",
        request=SuppressionInput,
        responses={201: SuppressionOutput, 200: SuppressionOutput, **ERRORS},
        description="Suppress an address (201), or answer its entry if it is already suppressed (200).",
    )
    def post(self, request):
        data = SuppressionInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"]
        added = services.suppression_add(emails=[email], reason=data.validated_data["reason"], actor=request.user)
        row = selectors.suppression_list().get(email_hash=services.suppression_hash(email))
        return Response(SuppressionOutput(row).data, status=status.HTTP_201_CREATED if added else status.HTTP_200_OK)


class SuppressionDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="suppressions_destroy", responses={204: None, **ERRORS})
    def delete(self, request, suppression_id: int):
        services.suppression_remove(suppression_id=suppression_id, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

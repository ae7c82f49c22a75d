"""REST API for accounts (companies), possible duplicates, merging two leads and tagging many.

- ``GET /api/v1/companies/`` (``search``, ``ordering``; paginated) and ``GET /api/v1/companies/<id>/``;
- ``GET /api/v1/leads/duplicates/`` (paginated pairs with reasons; ``lead`` narrows to one lead);
- ``POST /api/v1/leads/<id>/merge/`` ``{"duplicate": id, "fields": {"title": "duplicate"}}``;
- ``POST /api/v1/leads/tags/`` ``{"ids": [...], "add": [...], "remove": [...]}``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.errors import ValidationFailed
from leadfunnel.roles import IsMarketer, IsMarketerOrSales

from . import accounts, duplicates, selectors, services
from .api import ERRORS, BodyLimitedAPIView, LeadPagination
from .models import Company, Lead, Opportunity
from .serializers import LeadOutputSerializer


class CompanySerializer(serializers.ModelSerializer):
    people = serializers.IntegerField(read_only=True)
    best_fit = serializers.IntegerField(read_only=True)
    recent_engagement = serializers.IntegerField(read_only=True)
    account_score = serializers.IntegerField(read_only=True, help_text="0-100; see the README (Accounts).")

    class Meta:
        model = Company
        fields = (
            "id",
            "name",
            "domain",
            "size_band",
            "industry",
            "country",
            "city",
            "people",
            "best_fit",
            "recent_engagement",
            "account_score",
            "created_at",
        )


class CompanyLeadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lead
        fields = ("id", "email", "first_name", "last_name", "title", "stage", "score", "fit_score", "engagement_score")


class OpportunitySerializer(serializers.ModelSerializer):
    lead_id = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True, help_text="Always open here.")

    class Meta:
        model = Opportunity
        fields = ("id", "lead_id", "opportunity_size", "timeframe", "status", "created_at")


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit():
        raise ValidationFailed(f"{name}: Must be a whole number.", fields={name: ["Must be a whole number."]})
    return int(raw)


class CompanyListView(APIView):
    """Marketers, sales reps and admins read."""

    permission_classes = [IsMarketerOrSales]
    pagination_class = LeadPagination  # read by the schema generator: the list is paginated

    @extend_schema(
        operation_id="companies_list",
        parameters=[
            OpenApiParameter("search", OpenApiTypes.STR, description="Name or domain contains."),
            OpenApiParameter("ordering", OpenApiTypes.STR, description=", ".join(accounts.COMPANY_ORDERINGS)),
            OpenApiParameter("page", OpenApiTypes.INT),
        ],
        responses={200: CompanySerializer(many=True), **ERRORS},
    )
    def get(self, request):
        qs = accounts.company_list(
            search=request.query_params.get("search", "")[:200], ordering=request.query_params.get("ordering", "")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(CompanySerializer(page, many=True).data)


class CompanyDetailView(APIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(
        operation_id="companies_retrieve",
        responses={
            200: inline_serializer(
                "CompanyDetail",
                {
                    "company": CompanySerializer(),
                    "leads": CompanyLeadSerializer(many=True),
                    "engagement_by_week": serializers.ListField(child=serializers.DictField()),
                    "open_opportunities": OpportunitySerializer(many=True),
                    "open_pipeline": serializers.FloatField(),
                },
            ),
            **ERRORS,
        },
    )
    def get(self, request, company_id: int):
        page = accounts.company_get(company_id=company_id)
        return Response(
            {
                **CompanySerializer(page.company).data,
                "leads": CompanyLeadSerializer(page.leads, many=True).data,
                "engagement_by_week": [
                    {"week": w["week"].isoformat(), "interactions": w["interactions"]} for w in page.weeks
                ],
                "open_opportunities": OpportunitySerializer(page.opportunities, many=True).data,
                "open_pipeline": page.open_pipeline,
            }
        )


class DuplicatePagination(PageNumberPagination):
    page_size = duplicates.DUPLICATES_PAGE_SIZE


class DuplicateListView(APIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        operation_id="leads_duplicates",
        parameters=[
            OpenApiParameter("lead", OpenApiTypes.INT, description="Only pairs with this lead."),
            OpenApiParameter("page", OpenApiTypes.INT),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request):
        lead_id = _int_param(request, "lead")
        page = _int_param(request, "page") or 1
        size = duplicates.DUPLICATES_PAGE_SIZE
        pairs, total = duplicates.duplicate_pairs(lead_id=lead_id, limit=size, offset=(page - 1) * size)

        def link(n: int) -> str | None:
            params = request.query_params.copy()
            params["page"] = str(n)
            return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")

        return Response(
            {
                "count": total,
                "next": link(page + 1) if page * size < total else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": [
                    {
                        "lead": LeadOutputSerializer(p.first).data,
                        "duplicate": LeadOutputSerializer(p.second).data,
                        "reasons": p.reasons,
                        "review_url": f"/leads/{p.first.pk}/merge/?duplicate={p.second.pk}",
                        "merge_url": f"/api/v1/leads/{p.first.pk}/merge/",
                    }
                    for p in pairs
                ],
            }
        )


class LeadMergeView(BodyLimitedAPIView):
    """Marketers and admins."""

    permission_classes = [IsMarketer]

    @extend_schema(
        operation_id="leads_merge",
        request={
            "application/json": {
                "type": "object",
                "required": ["duplicate"],
                "properties": {
                    "duplicate": {"type": "integer", "description": "The lead merged into this one (then deleted)."},
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "enum": ["survivor", "duplicate"]},
                        "description": 'Per profile field, whose value wins ({"title": "duplicate"}); '
                        "default: the fuller value.",
                    },
                },
            }
        },
        responses={
            200: inline_serializer(
                "MergeResult",
                {
                    "lead": LeadOutputSerializer(),
                    "merged": serializers.DictField(),
                    "fields": serializers.DictField(),
                    "moved": serializers.DictField(),
                },
            ),
            **ERRORS,
        },
    )
    def post(self, request, lead_id: int):
        data = request.data if isinstance(request.data, dict) else {}
        if "duplicate" not in data:
            raise ValidationFailed("duplicate: This field is required.", fields={"duplicate": ["Required."]})
        selectors.lead_get(lead_id=lead_id)  # 404 before anything else
        result = services.lead_merge(
            survivor=lead_id, duplicate=data.get("duplicate"), fields=data.get("fields"), actor=request.user
        )
        return Response(
            {
                "lead": LeadOutputSerializer(selectors.lead_get(lead_id=lead_id)).data,
                "merged": {"id": result.duplicate_id, "email": result.duplicate_email},
                "fields": result.fields,
                "moved": result.moved,
            }
        )


class LeadTagsView(BodyLimitedAPIView):
    """Marketers and admins: add/remove tags on many leads at once."""

    permission_classes = [IsMarketer]

    @extend_schema(
        operation_id="leads_tags_bulk",
        request=inline_serializer(
            "TagsBulkInput",
            {
                "ids": serializers.ListField(child=serializers.IntegerField()),
                "add": serializers.ListField(child=serializers.CharField(), required=False),
                "remove": serializers.ListField(child=serializers.CharField(), required=False),
            },
        ),
        responses={200: inline_serializer("TagsBulkResult", {"changed": serializers.ListField()}), **ERRORS},
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        ids = data.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValidationFailed("ids: Must be a list of lead ids.", fields={"ids": ["Must be a list of lead ids."]})
        changed = services.leads_tag(
            lead_ids=ids, add=_tag_list(data, "add"), remove=_tag_list(data, "remove"), actor=request.user
        )
        return Response({"changed": changed})


def _tag_list(data: dict, name: str) -> list:
    value = data.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValidationFailed(f"{name}: Must be a list of tags.", fields={name: ["Must be a list of tags."]})
    return value

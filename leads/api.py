"""The leads REST API: thin views over leads.services / leads.selectors.

Public: ``POST /api/v1/forms/<slug>/submit/`` (CORS per form, honeypot, throttled,
Idempotency-Key). Authenticated: leads, timeline, forms, interactions and the
sales workflow (mark-mql, accept, reject, qualify, close, disqualify).
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import QueryDict
from django.utils.cache import patch_vary_headers
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.api import page_schema
from leadfunnel.roles import IsMarketer, IsMarketerOrSales, IsSalesRep
from leadfunnel.validation import refuse_nul

from . import selectors, services
from .models import Form
from .serializers import (
    BulkOutputSerializer,
    CloseInputSerializer,
    FormSerializer,
    FormSubmitInputSerializer,
    InteractionBulkInputSerializer,
    InteractionInputSerializer,
    InteractionOutputSerializer,
    LeadCreateInputSerializer,
    LeadOutputSerializer,
    LeadPatchInputSerializer,
    QualifyInputSerializer,
    QualifyOutputSerializer,
    ReasonInputSerializer,
    RecycleInputSerializer,
    RejectInputSerializer,
    SubmissionOutputSerializer,
    TimelineItemSerializer,
    save_audited,
)
from .throttles import IntakeRateThrottle, client_ip

ERRORS = {
    400: OpenApiResponse(description="Invalid input (JSON error body)."),
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Not allowed for this role or lead."),
    404: OpenApiResponse(description="Not found."),
}
CONFLICT = {409: OpenApiResponse(description="Illegal stage move, or someone else acted first.")}


def enforce_body_limit(request) -> bytes:
    """Read the body through Django, which refuses one over DATA_UPLOAD_MAX_MEMORY_SIZE (→ 413).

    DRF's parsers stream JSON straight from the socket and would skip that check.
    """
    body = request._request.body
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and len(body) > limit:
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
    return body


class BodyLimitedAPIView(APIView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            enforce_body_limit(request)


class BodyLimitedGenericAPIView(GenericAPIView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            enforce_body_limit(request)


class LeadPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


# --- public intake ------------------------------------------------------------------------


def _querydict_to_dict(data: QueryDict) -> dict:
    return {key: (values[0] if len(values) == 1 else values) for key, values in data.lists()}


def read_form_payload(request) -> dict:
    """JSON or form-encoded (urlencoded or multipart) body as a dict; clear 4xx otherwise."""
    raw = enforce_body_limit(request)
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if not raw and not media_type:
        return {}
    try:
        if media_type == "application/json" or media_type.endswith("+json"):
            try:
                data = json.loads(raw.decode("utf-8")) if raw else {}
            except UnicodeDecodeError:
                raise exceptions.ParseError("The JSON body is not valid UTF-8.") from None
            except json.JSONDecodeError as exc:
                raise exceptions.ParseError(
                    f"Malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
                ) from None
            if not isinstance(data, dict):
                raise exceptions.ParseError("The JSON body must be an object of field names and values.")
            refuse_nul(data)
            return data
        if media_type == "application/x-www-form-urlencoded":
            data = _querydict_to_dict(QueryDict(raw, encoding=request._request.encoding or "utf-8"))
            refuse_nul(data)
            return data
        if media_type == "multipart/form-data":
            data = _querydict_to_dict(request._request.POST)
            refuse_nul(data)
            return data
    except TooManyFieldsSent:
        raise exceptions.ParseError(
            f"Too many fields (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}).", code="too_many_fields"
        ) from None
    raise exceptions.UnsupportedMediaType(
        media_type or "(none)",
        detail=f'Unsupported content type "{media_type or "(none)"}": send application/json or '
        "application/x-www-form-urlencoded (or multipart/form-data).",
    )


def _origin_allowed(form: Form, origin: str) -> bool:
    if not origin:
        return False
    allowed = {o.strip().rstrip("/").lower() for o in form.allowed_origins or [] if isinstance(o, str)}
    return "*" in allowed or origin.strip().rstrip("/").lower() in allowed


class FormSubmitView(APIView):
    """Public form intake. No token: CORS per form, honeypot, per-IP throttle, Idempotency-Key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IntakeRateThrottle]
    parser_classes: list = []  # the body is read by read_form_payload (size limit, clear errors)
    form: Form | None = None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = request.headers.get("Origin", "")
        if self.form is not None and _origin_allowed(self.form, origin):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "Retry-After"
            if request.method == "OPTIONS":
                response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
                response["Access-Control-Allow-Headers"] = "Content-Type, Idempotency-Key"
                response["Access-Control-Max-Age"] = "600"
        patch_vary_headers(response, ("Origin",))
        return response

    @extend_schema(exclude=True)
    def options(self, request, slug: str):
        """CORS preflight: the allow headers are sent only for the form's allowed origins."""
        self.form = selectors.form_get_active(slug=slug)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="forms_submit",
        auth=[],
        request={
            "application/json": FormSubmitInputSerializer,
            "application/x-www-form-urlencoded": FormSubmitInputSerializer,
            "multipart/form-data": FormSubmitInputSerializer,
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="A retry with the same key answers the first submission's id and stores nothing.",
            )
        ],
        responses={
            201: SubmissionOutputSerializer,
            400: ERRORS[400],
            404: ERRORS[404],
            413: OpenApiResponse(description="Body too large."),
            415: OpenApiResponse(description="Unsupported content type."),
            429: OpenApiResponse(description="Too many submissions from this address (see Retry-After)."),
        },
    )
    def post(self, request, slug: str):
        self.form = selectors.form_get_active(slug=slug)
        data = read_form_payload(request)
        result = services.lead_submit_form(
            form=self.form,
            data=data,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return Response({"id": result.submission_id}, status=status.HTTP_201_CREATED)


# --- forms --------------------------------------------------------------------------------


class FormListCreateView(BodyLimitedAPIView):
    permission_classes = [IsMarketer]
    pagination_class = LeadPagination

    @extend_schema(operation_id="forms_list", responses={200: FormSerializer(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.form_list(), request, view=self)
        return paginator.get_paginated_response(FormSerializer(page, many=True).data)

    @extend_schema(operation_id="forms_create", request=FormSerializer, responses={201: FormSerializer, **ERRORS})
    def post(self, request):
        serializer = FormSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _form, data = save_audited(serializer, actor=request.user, entity="form", created_by=request.user)
        return Response(data, status=status.HTTP_201_CREATED)


class FormDetailView(BodyLimitedAPIView):
    permission_classes = [IsMarketer]

    def _get(self, slug: str) -> Form:
        form = Form.objects.filter(slug=slug).first()
        if form is None:
            raise exceptions.NotFound(f"No form with the slug '{slug}'.")
        return form

    @extend_schema(operation_id="forms_retrieve", responses={200: FormSerializer, **ERRORS})
    def get(self, request, slug: str):
        return Response(FormSerializer(self._get(slug)).data)

    @extend_schema(
        operation_id="forms_partial_update", request=FormSerializer, responses={200: FormSerializer, **ERRORS}
    )
    def patch(self, request, slug: str):
        serializer = FormSerializer(self._get(slug), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        _form, data = save_audited(serializer, actor=request.user, entity="form")
        return Response(data)


# --- leads --------------------------------------------------------------------------------


class LeadListCreateView(BodyLimitedGenericAPIView):
    """Marketers, sales reps and admins read; marketers and admins create."""

    serializer_class = LeadOutputSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = selectors.LeadFilter
    pagination_class = LeadPagination

    def get_permissions(self):
        return [IsMarketer()] if self.request.method == "POST" else [IsMarketerOrSales()]

    def get_queryset(self):
        return selectors.lead_list()

    @extend_schema(operation_id="leads_list", responses=LeadOutputSerializer(many=True))
    def get(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(LeadOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="leads_create",
        request=LeadCreateInputSerializer,
        responses={201: LeadOutputSerializer, **ERRORS, 409: OpenApiResponse(description="The email exists.")},
    )
    def post(self, request):
        serializer = LeadCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if k in request.data}
        source = data.pop("source")
        channel = data.pop("channel", "api")
        custom = data.pop("custom_fields", None) or {}
        lead = services.lead_create(data={**custom, **data}, source=source, channel=channel, actor=request.user)
        return Response(LeadOutputSerializer(selectors.lead_get(lead_id=lead.pk)).data, status=status.HTTP_201_CREATED)


class LeadDetailView(BodyLimitedAPIView):
    # PATCH: marketers and admins, and the rep who owns the lead (``services.lead_edit_profile``
    # says who; the dashboard's profile form follows the same rule).
    permission_classes = [IsMarketerOrSales]

    @extend_schema(operation_id="leads_retrieve", responses={200: LeadOutputSerializer, **ERRORS})
    def get(self, request, lead_id: int):
        return Response(LeadOutputSerializer(selectors.lead_get(lead_id=lead_id)).data)

    @extend_schema(
        operation_id="leads_partial_update",
        request=LeadPatchInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, 409: OpenApiResponse(description="The email is taken.")},
    )
    def patch(self, request, lead_id: int):
        serializer = LeadPatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k in request.data}
        services.lead_edit_profile(lead=lead_id, changes=changes, actor=request.user)
        return Response(LeadOutputSerializer(selectors.lead_get(lead_id=lead_id)).data)


class LeadTimelineView(APIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(
        operation_id="leads_timeline",
        parameters=[
            OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses={200: page_schema("PaginatedTimelineItemList", TimelineItemSerializer), **ERRORS},
    )
    def get(self, request, lead_id: int):
        if not selectors.Lead.objects.filter(pk=lead_id).exists():
            raise exceptions.NotFound(f"No lead with id {lead_id}.")
        paginator = LeadPagination()
        page = paginator.paginate_queryset(selectors.LeadTimeline(lead_id), request, view=self)
        return paginator.get_paginated_response(TimelineItemSerializer(page, many=True).data)


# --- interactions -------------------------------------------------------------------------


class InteractionCreateView(BodyLimitedAPIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(
        operation_id="interactions_create",
        request=InteractionInputSerializer,
        responses={
            201: InteractionOutputSerializer,
            200: OpenApiResponse(InteractionOutputSerializer, description="Already recorded (same external_id)."),
            **ERRORS,
        },
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise exceptions.ParseError("The body must be a JSON object (one event); use /bulk/ for lists.")
        # Validation (types, dates, lead or email) happens once, in the service, with clear messages.
        data = request.data
        interaction, created = services.interaction_record(
            type=data.get("type"),
            lead=data.get("lead"),
            email=data.get("email"),
            occurred_at=data.get("occurred_at"),
            properties=data.get("properties"),
            source=data.get("source") or "api",
            external_id=data.get("external_id"),
        )
        return Response(
            InteractionOutputSerializer(interaction).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class InteractionBulkView(BodyLimitedAPIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(
        operation_id="interactions_bulk",
        request=InteractionBulkInputSerializer,
        responses={200: BulkOutputSerializer, **ERRORS},
    )
    def post(self, request):
        data = request.data
        events = data.get("events") if isinstance(data, dict) else data
        if not isinstance(events, list):
            raise exceptions.ParseError('Send a JSON list of events, or {"events": [...]}.')
        result = services.interactions_record_bulk(
            events=events, source=(data.get("source") if isinstance(data, dict) else None) or "api"
        )
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "errors": result.errors,
                "created_leads": result.created_lead_ids,
            }
        )


# --- the sales workflow -------------------------------------------------------------------


def _lead_answer(lead) -> Response:
    return Response(LeadOutputSerializer(selectors.lead_get(lead_id=lead.pk)).data)


class MarkMqlView(BodyLimitedAPIView):
    permission_classes = [IsMarketer]

    @extend_schema(
        operation_id="leads_mark_mql",
        request=ReasonInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = ReasonInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_mark_mql(
            lead=lead_id, actor=request.user, reason=serializer.validated_data.get("reason", "")
        )
        return _lead_answer(lead)


class AcceptView(BodyLimitedAPIView):
    permission_classes = [IsSalesRep]

    @extend_schema(
        operation_id="leads_accept",
        request=ReasonInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = ReasonInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_accept(
            lead=lead_id, actor=request.user, reason=serializer.validated_data.get("reason", "")
        )
        return _lead_answer(lead)


class RejectView(BodyLimitedAPIView):
    permission_classes = [IsSalesRep]

    @extend_schema(
        operation_id="leads_reject",
        request=RejectInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = RejectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_reject(lead=lead_id, actor=request.user, **serializer.validated_data)
        return _lead_answer(lead)


class QualifyView(BodyLimitedAPIView):
    permission_classes = [IsSalesRep]

    @extend_schema(
        operation_id="leads_qualify",
        request=QualifyInputSerializer,
        responses={200: QualifyOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = QualifyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead, opportunity = services.lead_qualify(lead=lead_id, actor=request.user, **serializer.validated_data)
        return Response(
            QualifyOutputSerializer({"lead": selectors.lead_get(lead_id=lead.pk), "opportunity": opportunity}).data
        )


class CloseView(BodyLimitedAPIView):
    permission_classes = [IsSalesRep]

    @extend_schema(
        operation_id="leads_close",
        request=CloseInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = CloseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_close(lead=lead_id, actor=request.user, **serializer.validated_data)
        return _lead_answer(lead)


class RecycleView(BodyLimitedAPIView):
    """A lost lead back to marketing (recycled), by the rep who worked the deal or an admin."""

    permission_classes = [IsSalesRep]

    @extend_schema(
        operation_id="leads_recycle",
        request=RecycleInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = RecycleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_recycle(lead=lead_id, actor=request.user, reason=serializer.validated_data["reason"])
        return _lead_answer(lead)


class DisqualifyView(BodyLimitedAPIView):
    permission_classes = [IsMarketerOrSales]

    @extend_schema(
        operation_id="leads_disqualify",
        request=RejectInputSerializer,
        responses={200: LeadOutputSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, lead_id: int):
        serializer = RejectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_disqualify(lead=lead_id, actor=request.user, **serializer.validated_data)
        return _lead_answer(lead)

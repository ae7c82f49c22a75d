"""Sequences API (marketers and admins): thin views over nurturing.services / selectors."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.api import page_schema
from leadfunnel.errors import NotFound, ValidationFailed
from leadfunnel.roles import IsMarketer
from leads.models import Lead

from . import selectors, services
from .serializers import (
    BulkEnrollmentOutputSerializer,
    EmailTemplateInputSerializer,
    EmailTemplateOutputSerializer,
    EnrollmentInputSerializer,
    EnrollmentOutputSerializer,
    PreviewSerializer,
    SequenceInputSerializer,
    SequenceOutputSerializer,
    SequenceStatsSerializer,
)


class _MarketerView(APIView):
    permission_classes = [IsMarketer]


def _paginate(request, view, queryset, serializer_class):
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class SequenceListCreateApi(_MarketerView):
    @extend_schema(
        operation_id="sequences_list",
        responses=page_schema("PaginatedSequenceList", SequenceOutputSerializer),
        tags=["sequences"],
    )
    def get(self, request):
        return _paginate(request, self, selectors.sequence_list(), SequenceOutputSerializer)

    @extend_schema(request=SequenceInputSerializer, responses={201: SequenceOutputSerializer}, tags=["sequences"])
    def post(self, request):
        serializer = SequenceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sequence = services.sequence_create(data=serializer.validated_data, actor=request.user)
        return Response(
            SequenceOutputSerializer(selectors.sequence_get(sequence_id=sequence.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class SequenceDetailApi(_MarketerView):
    @extend_schema(responses=SequenceOutputSerializer, tags=["sequences"])
    def get(self, request, sequence_id: int):
        return Response(SequenceOutputSerializer(selectors.sequence_get(sequence_id=sequence_id)).data)

    def _update(self, request, sequence_id: int, *, partial: bool):
        sequence = selectors.sequence_get(sequence_id=sequence_id)
        serializer = SequenceInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if not partial or k in request.data}
        services.sequence_update(sequence=sequence, data=data, actor=request.user)
        return Response(SequenceOutputSerializer(selectors.sequence_get(sequence_id=sequence_id)).data)

    @extend_schema(request=SequenceInputSerializer, responses=SequenceOutputSerializer, tags=["sequences"])
    def put(self, request, sequence_id: int):
        return self._update(request, sequence_id, partial=False)

    @extend_schema(request=SequenceInputSerializer, responses=SequenceOutputSerializer, tags=["sequences"])
    def patch(self, request, sequence_id: int):
        return self._update(request, sequence_id, partial=True)

    @extend_schema(responses={204: None}, tags=["sequences"])
    def delete(self, request, sequence_id: int):
        services.sequence_delete(sequence=selectors.sequence_get(sequence_id=sequence_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SequenceEnrollmentsApi(_MarketerView):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, description="active, completed, exited, goal_reached")],
        operation_id="sequence_enrollments_list",
        responses=page_schema("PaginatedEnrollmentList", EnrollmentOutputSerializer),
        tags=["sequences"],
    )
    def get(self, request, sequence_id: int):
        sequence = selectors.sequence_get(sequence_id=sequence_id)
        enrollments = selectors.enrollment_list(sequence=sequence, status=request.query_params.get("status"))
        return _paginate(request, self, enrollments, EnrollmentOutputSerializer)

    @extend_schema(
        request=EnrollmentInputSerializer,
        responses={201: EnrollmentOutputSerializer, 200: BulkEnrollmentOutputSerializer},
        description='Enrol one lead (`{"lead": id}`, 201 with the enrolment; 409 with the reason when it is not '
        'possible), several (`{"leads": [ids]}`) or every lead matching a filter (`{"filter": {"stage": '
        '"recycled", "min_score": 20}}`); bulk answers 200 `{"enrolled", "skipped"}`.',
        tags=["sequences"],
    )
    def post(self, request, sequence_id: int):
        sequence = selectors.sequence_get(sequence_id=sequence_id)
        serializer = EnrollmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "lead" in data:
            lead = Lead.objects.filter(pk=data["lead"]).first()
            if lead is None:
                raise ValidationFailed("No lead with this id.", fields={"lead": ["No lead with this id."]})
            enrollment = services.enrollment_create(sequence=sequence, lead=lead, actor=request.user)
            return Response(EnrollmentOutputSerializer(enrollment).data, status=status.HTTP_201_CREATED)
        if "leads" in data:
            lead_ids = list(dict.fromkeys(data["leads"]))
        else:
            lead_ids = list(services.leads_matching(data["filter"]).values_list("pk", flat=True)[:50_000])
        enrolled = services.enrollments_create(
            sequence=sequence, lead_ids=lead_ids, source="manual", actor=request.user
        )
        return Response({"enrolled": len(enrolled), "skipped": len(lead_ids) - len(enrolled)})


class SequenceStatsApi(_MarketerView):
    @extend_schema(responses=SequenceStatsSerializer, tags=["sequences"])
    def get(self, request, sequence_id: int):
        sequence = selectors.sequence_get(sequence_id=sequence_id)
        return Response(selectors.sequence_stats(sequence=sequence))


class SequencePreviewApi(_MarketerView):
    @extend_schema(
        parameters=[
            OpenApiParameter("lead", int, description="Lead to render for (default: the first lead)"),
            OpenApiParameter("step", int, description="Position of an email/SMS step (default: the first)"),
        ],
        responses=PreviewSerializer,
        tags=["sequences"],
    )
    def get(self, request, sequence_id: int):
        sequence = selectors.sequence_get(sequence_id=sequence_id)
        params = {}
        for name in ("lead", "step"):
            raw = request.query_params.get(name)
            if raw is not None:
                if not raw.isdigit():
                    raise ValidationFailed(f"'{name}' must be a number.", fields={name: ["Must be a number."]})
                params[name] = int(raw)
        if "lead" in params and not Lead.objects.filter(pk=params["lead"]).exists():
            raise NotFound("No lead with this id.")
        return Response(
            selectors.sequence_preview(sequence=sequence, lead_id=params.get("lead"), position=params.get("step"))
        )


class EmailTemplateListCreateApi(_MarketerView):
    @extend_schema(
        operation_id="email_templates_list",
        responses=page_schema("PaginatedEmailTemplateList", EmailTemplateOutputSerializer),
        tags=["email templates"],
    )
    def get(self, request):
        return _paginate(request, self, selectors.email_template_list(), EmailTemplateOutputSerializer)

    @extend_schema(
        request=EmailTemplateInputSerializer, responses={201: EmailTemplateOutputSerializer}, tags=["email templates"]
    )
    def post(self, request):
        serializer = EmailTemplateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.email_template_create(data=serializer.validated_data, actor=request.user)
        return Response(EmailTemplateOutputSerializer(template).data, status=status.HTTP_201_CREATED)


class EmailTemplateDetailApi(_MarketerView):
    @extend_schema(responses=EmailTemplateOutputSerializer, tags=["email templates"])
    def get(self, request, template_id: int):
        return Response(EmailTemplateOutputSerializer(selectors.email_template_get(template_id=template_id)).data)

    @extend_schema(
        request=EmailTemplateInputSerializer, responses=EmailTemplateOutputSerializer, tags=["email templates"]
    )
    def patch(self, request, template_id: int):
        template = selectors.email_template_get(template_id=template_id)
        serializer = EmailTemplateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        template = services.email_template_update(template=template, data=serializer.validated_data, actor=request.user)
        return Response(EmailTemplateOutputSerializer(template).data)

    @extend_schema(responses={204: None}, tags=["email templates"])
    def delete(self, request, template_id: int):
        template = selectors.email_template_get(template_id=template_id)
        services.email_template_delete(template=template, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

"""API views of outgoing webhooks (admins): subscriptions, the event catalogue, the delivery log.

Thin views: validate input with a plain serializer, call a service, shape output.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from .api import page_schema
from .errors import ValidationFailed
from .models import WebhookDelivery, WebhookSubscription
from .roles import IsAdmin
from .webhooks import (
    EVENTS,
    webhook_create,
    webhook_delete,
    webhook_redeliver,
    webhook_rotate_secret,
    webhook_update,
)

# --- webhooks --------------------------------------------------------------------------------


class WebhookInput(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    secret = serializers.CharField(min_length=16, max_length=200, trim_whitespace=False)
    events = serializers.ListField(child=serializers.CharField(max_length=100), allow_empty=False, max_length=50)
    active = serializers.BooleanField(required=False, default=True)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookOutput(serializers.ModelSerializer):
    secret_set = serializers.SerializerMethodField()

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "events",
            "description",
            "active",
            "secret_set",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]

    def get_secret_set(self, obj) -> bool:
        return bool(obj.secret)


class DeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "event",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "last_status_code",
            "last_error",
            "last_response_body",
            "attempt_log",
            "redelivery_of",
            "payload",
        ]


class WebhookListView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="v1_webhooks_list", responses=page_schema("PaginatedWebhookList", WebhookOutput))
    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(WebhookSubscription.objects.order_by("id"), request, view=self)
        return paginator.get_paginated_response(WebhookOutput(page, many=True).data)

    @extend_schema(request=WebhookInput, responses={201: WebhookOutput})
    def post(self, request):
        data = WebhookInput(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = webhook_create(actor=request.user, **data.validated_data)
        return Response(WebhookOutput(subscription).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses=WebhookOutput)
    def get(self, request, pk: int):
        return Response(WebhookOutput(get_object_or_404(WebhookSubscription, pk=pk)).data)

    @extend_schema(request=WebhookInput(partial=True), responses=WebhookOutput)
    def patch(self, request, pk: int):
        data = WebhookInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in request.data}
        subscription = webhook_update(subscription_id=pk, actor=request.user, **changes)
        return Response(WebhookOutput(subscription).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        webhook_delete(subscription_id=pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEventsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        responses=inline_serializer(
            "WebhookEvent", {"name": serializers.CharField(), "description": serializers.CharField()}, many=True
        )
    )
    def get(self, request):
        return Response([{"name": name, "description": text} for name, text in EVENTS.items()])


class WebhookDeliveriesView(APIView):
    """The delivery log of one subscription, newest first."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=list(WebhookDelivery.Status.values))],
        responses=DeliveryOutput(many=True),
    )
    def get(self, request, pk: int):
        get_object_or_404(WebhookSubscription.objects.only("pk"), pk=pk)
        rows = WebhookDelivery.objects.filter(subscription_id=pk).order_by("-created_at", "-id")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in WebhookDelivery.Status.values:
                raise ValidationFailed(f"status must be one of {', '.join(WebhookDelivery.Status.values)}.")
            rows = rows.filter(status=wanted)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(DeliveryOutput(page, many=True).data)


class WebhookRedeliverView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={202: DeliveryOutput})
    def post(self, request, pk: int):
        delivery = webhook_redeliver(delivery_id=pk, actor=request.user)
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookRotateSecretView(APIView):
    """A new signing secret for the subscription, answered once (it is never shown again)."""

    permission_classes = [IsAdmin]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "WebhookSecret", {"id": serializers.IntegerField(), "secret": serializers.CharField()}
        ),
    )
    def post(self, request, pk: int):
        subscription, secret = webhook_rotate_secret(subscription_id=pk, actor=request.user)
        response = Response({"id": subscription.pk, "secret": secret})
        response["Cache-Control"] = "no-store"
        return response

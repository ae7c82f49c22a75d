from django.urls import path

from . import webhooks_api

urlpatterns: list = [
    path("webhooks/", webhooks_api.WebhookListView.as_view(), name="api-webhooks"),
    path("webhooks/events/", webhooks_api.WebhookEventsView.as_view(), name="api-webhook-events"),
    path("webhooks/<int:pk>/", webhooks_api.WebhookDetailView.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/rotate-secret/", webhooks_api.WebhookRotateSecretView.as_view(), name="api-webhook-rotate"),
    path("webhooks/<int:pk>/deliveries/", webhooks_api.WebhookDeliveriesView.as_view(), name="api-webhook-deliveries"),
    path(
        "webhooks/deliveries/<int:pk>/redeliver/",
        webhooks_api.WebhookRedeliverView.as_view(),
        name="api-webhook-redeliver",
    ),
]

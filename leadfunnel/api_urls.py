from django.urls import path

from . import ops_api

urlpatterns: list = [
    path("funnel/", ops_api.FunnelView.as_view(), name="api-funnel"),
    path("reps/<int:user_id>/", ops_api.RepUpdateView.as_view(), name="api-rep"),
    path("leads/export.csv", ops_api.LeadExportView.as_view(), name="api-leads-export"),
    path("leads/<int:lead_id>/assignments/", ops_api.LeadAssignmentsView.as_view(), name="api-lead-assignments"),
    path("webhooks/", ops_api.WebhookListView.as_view(), name="api-webhooks"),
    path("webhooks/events/", ops_api.WebhookEventsView.as_view(), name="api-webhook-events"),
    path("webhooks/<int:pk>/", ops_api.WebhookDetailView.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/deliveries/", ops_api.WebhookDeliveriesView.as_view(), name="api-webhook-deliveries"),
    path(
        "webhooks/deliveries/<int:pk>/redeliver/",
        ops_api.WebhookRedeliverView.as_view(),
        name="api-webhook-redeliver",
    ),
    path("imports/", ops_api.ImportListView.as_view(), name="api-imports"),
    path("imports/<int:pk>/", ops_api.ImportDetailView.as_view(), name="api-import"),
    path("imports/<int:pk>/errors.csv", ops_api.ImportErrorsView.as_view(), name="api-import-errors"),
]

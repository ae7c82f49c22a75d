"""Dashboard pages of the plumbing: outgoing webhooks (admins)."""

from django.urls import path

from . import webhook_views

app_name = "webhooks_ui"

urlpatterns = [
    path("webhooks/", webhook_views.webhooks_list, name="list"),
    path("webhooks/new/", webhook_views.webhook_new, name="new"),
    path("webhooks/<int:pk>/", webhook_views.webhook_detail, name="detail"),
    path("webhooks/<int:pk>/delete/", webhook_views.webhook_remove, name="delete"),
    path("webhooks/<int:pk>/rotate-secret/", webhook_views.webhook_rotate, name="rotate"),
    path("webhooks/deliveries/<int:pk>/redeliver/", webhook_views.delivery_redeliver, name="redeliver"),
]

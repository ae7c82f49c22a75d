"""Webhook pages (admins only): subscriptions (list, create, edit, delete), the delivery log with
redelivery, and secret rotation. Every write calls ``leadfunnel.webhooks`` — the API's services —
so the pages and ``/api/v1/webhooks/`` validate and audit alike. A new secret is made by the
server and shown once, on the answer to the POST that made it (never stored in a message or URL).
"""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .errors import DomainError
from .models import WebhookDelivery, WebhookSubscription
from .roles import admin_required
from .webhooks import (
    EVENTS,
    webhook_create,
    webhook_delete,
    webhook_redeliver,
    webhook_rotate_secret,
    webhook_secret_new,
    webhook_update,
)

DELIVERIES_PER_PAGE = 25


class SubscriptionForm(forms.Form):
    url = forms.URLField(
        label="URL", max_length=2000, assume_scheme="https", help_text="Where LeadFunnel POSTs the events."
    )
    description = forms.CharField(required=False, max_length=200, help_text="e.g. “CRM sync” (optional).")
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {text}") for name, text in EVENTS.items()],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )
    active = forms.BooleanField(required=False, initial=True, help_text="Inactive subscriptions receive nothing.")


def _apply_errors(form: forms.Form, exc: DomainError) -> None:
    placed = False
    for name, errors in (exc.fields or {}).items():
        if name in form.fields:
            form.add_error(name, " ".join(str(e) for e in errors))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _secret_page(request: HttpRequest, subscription: WebhookSubscription, secret: str, *, created: bool):
    response = render(
        request,
        "webhooks/secret.html",
        {"nav": "webhooks", "subscription": subscription, "secret": secret, "created": created},
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@admin_required
def webhooks_list(request: HttpRequest) -> HttpResponse:
    subscriptions = WebhookSubscription.objects.order_by("id")
    return render(request, "webhooks/list.html", {"nav": "webhooks", "subscriptions": subscriptions})


@never_cache
@require_http_methods(["GET", "POST"])
@admin_required
def webhook_new(request: HttpRequest) -> HttpResponse:
    form = SubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        secret = webhook_secret_new()
        try:
            subscription = webhook_create(actor=request.user, secret=secret, **form.cleaned_data)
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            return _secret_page(request, subscription, secret, created=True)
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/form.html", {"nav": "webhooks", "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@admin_required
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A subscription's settings (editable) and its delivery log, newest first, paginated."""
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    initial = {k: getattr(subscription, k) for k in ("url", "description", "events", "active")}
    form = SubscriptionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            webhook_update(subscription_id=pk, actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Webhook subscription saved.")
            return redirect("webhooks_ui:detail", pk=pk)
    wanted = request.GET.get("status", "")
    deliveries = WebhookDelivery.objects.filter(subscription_id=pk).order_by("-created_at", "-id")
    if wanted in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=wanted)
    else:
        wanted = ""
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "nav": "webhooks",
        "subscription": subscription,
        "form": form,
        "page": page,
        "status": wanted,
        "statuses": WebhookDelivery.Status.values,
    }
    return render(request, "webhooks/detail.html", context, status=400 if form.errors else 200)


@require_POST
@admin_required
def webhook_remove(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        webhook_delete(subscription_id=pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Webhook subscription deleted; its delivery log went with it.")
    return redirect("webhooks_ui:list")


@never_cache
@require_POST
@admin_required
def webhook_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(WebhookSubscription.objects.only("pk"), pk=pk)
    subscription, secret = webhook_rotate_secret(subscription_id=pk, actor=request.user)
    return _secret_page(request, subscription, secret, created=False)


@require_POST
@admin_required
def delivery_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery.objects.only("pk", "subscription_id"), pk=pk)
    try:
        copy = webhook_redeliver(delivery_id=pk, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery {pk} queued again as delivery {copy.pk}.")
    return redirect("webhooks_ui:detail", pk=delivery.subscription_id)

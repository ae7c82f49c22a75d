"""Privacy pages: erase a person and download their export (lead page, marketers and admins), and
the suppression list (admins). The writes are ``leads.services``'; these views only ask and show."""

import json

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import admin_required, role_required

from .. import selectors, services
from ..models import SuppressionReason
from ..privacy import lead_export
from ..privacy_api import export_filename
from .common import form_error_text


class EraseForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        label="I understand: the person's data is removed for good",
        error_messages={"required": "Tick the confirmation to erase this person."},
    )


@require_POST
@role_required(marketer=True)
def lead_erase(request: HttpRequest, lead_id: int) -> HttpResponse:
    form = EraseForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return redirect("dashboard:lead", lead_id=lead_id)
    try:
        removed = services.lead_erase(lead=lead_id, actor=request.user)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        return redirect("dashboard:lead", lead_id=lead_id)
    summary = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in removed.items() if n)
    messages.success(request, f"The person's data was erased ({summary}). The funnel history stays, anonymised.")
    return redirect("dashboard:lead", lead_id=lead_id)


@require_GET
@role_required(marketer=True)
def lead_export_download(request: HttpRequest, lead_id: int) -> HttpResponse:
    document = lead_export(lead_id=lead_id)
    if not document:
        raise Http404("No such lead.")
    response = HttpResponse(
        json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{export_filename(lead_id)}"'
    return response


class SuppressionForm(forms.Form):
    email = forms.EmailField(label="Email address")
    reason = forms.ChoiceField(choices=SuppressionReason.choices, initial=SuppressionReason.MANUAL)


@require_http_methods(["GET", "POST"])
@admin_required
def suppressions(request: HttpRequest) -> HttpResponse:
    form = SuppressionForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            added = services.suppression_add(
                emails=[form.cleaned_data["email"]], reason=form.cleaned_data["reason"], actor=request.user
            )
            messages.success(request, "Suppressed." if added else "That address was already suppressed.")
            return redirect("dashboard:suppressions")
        messages.error(request, form_error_text(form))
    rows = selectors.suppression_list()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "leads/suppressions.html", {"nav": "suppressions", "form": form, "page": page})


@require_POST
@admin_required
def suppression_delete(request: HttpRequest, suppression_id: int) -> HttpResponse:
    try:
        services.suppression_remove(suppression_id=suppression_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Removed from the suppression list: marketing email may reach it again.")
    return redirect(reverse("dashboard:suppressions"))

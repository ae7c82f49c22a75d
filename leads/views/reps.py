"""Sales reps' routing settings: admins set away, capacity, manager and territory rules
(``/reps/``); a rep sets their own away flag from the queue page. Both call
:func:`leads.sla.rep_profile_update`, the service behind ``PATCH /api/v1/reps/<id>/``."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import admin_required, role_required

from ..funnel import AWAITING_SALES
from ..models import SalesRepProfile
from ..sla import rep_profile_update
from ..territories import REGIONS, SIZE_BANDS
from .common import place_field_errors

CAPACITY_DEFAULT = SalesRepProfile._meta.get_field("capacity").get_default()


def _sales_users():
    return get_user_model().objects.filter(is_active=True, groups__name="sales")


class RepForm(forms.Form):
    is_away = forms.BooleanField(required=False, label="Away", help_text="Away reps get no new leads.")
    capacity = forms.IntegerField(
        min_value=0, max_value=100_000, help_text="Most MQLs/PQLs waiting for this rep at once."
    )
    manager = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="— none —",
        help_text="Told when this rep misses an SLA.",
    )
    territories_text = forms.CharField(
        required=False,
        label="Territories",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Countries or regions, one per line or comma-separated: DE, Germany, DACH, Nordics, NA … "
        "Leave empty for no country rule.",
    )
    company_sizes = forms.MultipleChoiceField(
        required=False,
        choices=[(band, band) for band in SIZE_BANDS],
        widget=forms.CheckboxSelectMultiple,
        label="Company sizes",
        help_text="Employees. None ticked: any size.",
    )

    def __init__(self, *args, rep, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["manager"].queryset = get_user_model().objects.filter(is_active=True).exclude(pk=rep.pk)

    def clean_territories_text(self) -> list[str]:
        raw = self.cleaned_data["territories_text"].replace(",", "\n")
        return [line.strip() for line in raw.splitlines() if line.strip()]

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            "is_away": data["is_away"],
            "capacity": data["capacity"],
            "manager": data["manager"],
            "territories": data["territories_text"],
            "company_sizes": data["company_sizes"],
        }


@require_GET
@admin_required
def reps_list(request: HttpRequest) -> HttpResponse:
    """Every active sales rep with their routing facts and how many leads wait for them."""
    reps = (
        _sales_users()
        .select_related("rep_profile", "rep_profile__manager")
        .annotate(open_count=Count("owned_leads", filter=Q(owned_leads__stage__in=list(AWAITING_SALES))))
        .order_by("username")
    )
    return render(
        request,
        "reps/list.html",
        {"nav": "reps", "reps": reps, "capacity_default": CAPACITY_DEFAULT, "regions": list(REGIONS)},
    )


@require_http_methods(["GET", "POST"])
@admin_required
def rep_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    rep = _sales_users().filter(pk=user_id).first()
    if rep is None:
        raise Http404("No such sales rep.")
    profile = SalesRepProfile.objects.filter(user=rep).select_related("manager").first()
    initial = {"capacity": CAPACITY_DEFAULT}
    if profile:
        initial = {
            "is_away": profile.is_away,
            "capacity": profile.capacity,
            "manager": profile.manager_id,
            "territories_text": "\n".join(profile.territories or []),
            "company_sizes": profile.company_sizes or [],
        }
    form = RepForm(request.POST or None, initial=initial, rep=rep)
    if request.method == "POST" and form.is_valid():
        try:
            rep_profile_update(actor=request.user, user_id=rep.pk, changes=form.changes())
        except DomainError as exc:
            place_field_errors(form, exc.fields, message=exc.message, renames={"territories": "territories_text"})
        else:
            messages.success(request, f"Routing settings of {rep.get_full_name() or rep.username} saved.")
            return redirect("dashboard:reps")
    status = 400 if form.errors else 200
    context = {"nav": "reps", "rep": rep, "form": form, "regions": list(REGIONS)}
    return render(request, "reps/edit.html", context, status=status)


@require_POST
@role_required(sales=True)
def rep_away(request: HttpRequest) -> HttpResponse:
    """A rep marks themselves away (or back) from their queue page."""
    away = request.POST.get("is_away") == "true"
    try:
        rep_profile_update(actor=request.user, user_id=request.user.pk, changes={"is_away": away})
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if away:
            messages.success(request, "You are away: new leads go to the other reps until you are back.")
        else:
            messages.success(request, "Welcome back: new leads come to you again.")
    return redirect("dashboard:queue")

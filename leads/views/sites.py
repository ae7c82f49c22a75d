"""The marketers' tracked-sites pages (list with a create form, detail with the snippet and an edit
form). Writes go through the API's serializer so the dashboard and ``/api/v1/sites/`` validate and
audit alike."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from leadfunnel.roles import role_required

from .. import selectors, tracking
from ..models import TrackedSite
from ..serializers import SiteSerializer, save_audited
from .common import place_field_errors


class SiteForm(forms.Form):
    name = forms.CharField(max_length=200)
    allowed_origins_text = forms.CharField(
        label="Allowed origins",
        help_text="One per line, e.g. https://www.example.com. Only these may send page views.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    active = forms.BooleanField(required=False, initial=True)

    def clean_allowed_origins_text(self) -> list[str]:
        lines = [line for line in self.cleaned_data["allowed_origins_text"].splitlines() if line.strip()]
        try:
            return tracking.clean_origins(lines)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


def _save(request: HttpRequest, form: SiteForm, instance: TrackedSite | None) -> TrackedSite | None:
    """Through the API's serializer; its errors land on the page's fields. None when refused."""
    data = {
        "name": form.cleaned_data["name"],
        "allowed_origins": form.cleaned_data["allowed_origins_text"],
        "active": form.cleaned_data["active"],
    }
    serializer = SiteSerializer(instance, data=data)
    if not serializer.is_valid():
        place_field_errors(form, serializer.errors, renames={"allowed_origins": "allowed_origins_text"})
        return None
    extra = {"created_by": request.user} if instance is None else {}
    site, _data = save_audited(serializer, actor=request.user, entity="site", **extra)
    return site


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def sites_list(request: HttpRequest) -> HttpResponse:
    form = SiteForm(request.POST or None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        site = _save(request, form, None)
        if site is not None:
            messages.success(request, f"Site “{site.name}” added. Paste the snippet below into every page.")
            return redirect("dashboard:site", site_id=site.pk)
    sites = selectors.sites_with_counts()
    return render(request, "sites/list.html", {"nav": "sites", "sites": sites, "form": form})


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def site_detail(request: HttpRequest, site_id: int) -> HttpResponse:
    site = selectors.sites_with_counts().filter(pk=site_id).first()
    if site is None:
        raise Http404("No such site.")
    initial = {"name": site.name, "allowed_origins_text": "\n".join(site.allowed_origins or []), "active": site.active}
    form = SiteForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid() and _save(request, form, site) is not None:
        messages.success(request, "Site saved.")
        return redirect("dashboard:site", site_id=site.pk)
    anonymous_views = selectors.site_anonymous_views_count(site=site)
    return render(
        request,
        "sites/detail.html",
        {
            "nav": "sites",
            "site": site,
            "form": form,
            "snippet": tracking.site_snippet(site.public_key),
            "anonymous_views_7d": anonymous_views,
        },
    )

"""The marketers' web-form pages (list, create, detail with the embed snippet). Creation goes
through the API's serializer so the dashboard and ``POST /api/v1/forms/`` validate and audit alike."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from leadfunnel.audit import audit_record
from leadfunnel.roles import role_required

from .. import dashboard, tracking
from ..models import Form, TrackedSite
from ..serializers import FormSerializer


class WebFormForm(forms.ModelForm):
    allowed_origins_text = forms.CharField(
        required=False,
        label="Allowed origins",
        help_text="One per line, e.g. https://www.example.com. Leave empty to allow posts from any site.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = Form
        fields = ["name", "slug", "kind", "channel", "channel_weight", "success_message", "redirect_url"]

    def clean_allowed_origins_text(self) -> list[str]:
        origins = [line.strip().rstrip("/") for line in self.cleaned_data["allowed_origins_text"].splitlines()]
        bad = [o for o in origins if o and not o.startswith(("http://", "https://"))]
        if bad:
            raise forms.ValidationError(f"Origins start with http:// or https:// ({bad[0]}).")
        return [o for o in origins if o]


@require_GET
@role_required(marketer=True)
def forms_list(request: HttpRequest) -> HttpResponse:
    return render(request, "forms/list.html", {"nav": "forms", "forms": dashboard.forms_with_counts()})


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def form_create(request: HttpRequest) -> HttpResponse:
    """Create a form through the API's serializer (same validation and audit as POST /api/v1/forms/)."""
    form = WebFormForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "allowed_origins": form.cleaned_data["allowed_origins_text"]}
        data.pop("allowed_origins_text")
        serializer = FormSerializer(data=data)
        if serializer.is_valid():
            created = serializer.save(created_by=request.user)
            cache.delete(dashboard.FORMS_CACHE_KEY)
            audit_record(actor=request.user, action="form.created", obj=created, changes=FormSerializer(created).data)
            messages.success(request, f"Form “{created.name}” created. Paste the snippet below on your site.")
            return redirect("dashboard:form", slug=created.slug)
        for name, errors in serializer.errors.items():
            target = "allowed_origins_text" if name == "allowed_origins" else name
            form.add_error(target if target in form.fields else None, " ".join(str(e) for e in errors))
    return render(request, "forms/create.html", {"nav": "forms", "form": form})


@require_GET
@role_required(marketer=True)
def form_detail(request: HttpRequest, slug: str) -> HttpResponse:
    item = dashboard.form_with_counts(slug=slug)
    if item is None:
        raise Http404("No such form.")
    endpoint = f"{settings.SITE_URL}/api/v1/forms/{item.slug}/submit/"
    sites = list(TrackedSite.objects.filter(active=True).order_by("name", "pk"))
    for site in sites:
        site.snippet = tracking.site_snippet(site.public_key)
    return render(
        request,
        "forms/detail.html",
        {
            "nav": "forms",
            "item": item,
            "endpoint": endpoint,
            "snippet": dashboard.form_snippet(item, endpoint),
            "tracking_sites": sites,
        },
    )

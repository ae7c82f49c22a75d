"""The marketers' web-form pages (list, create, edit with a live preview of the embed snippet, detail). Creation goes
through the API's serializer so the dashboard and ``POST /api/v1/forms/`` validate and audit alike."""

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.roles import role_required

from .. import dashboard, tracking
from ..models import Form, TrackedSite
from ..serializers import FormSerializer, save_audited
from .common import place_field_errors

# Suggestions for a form's kind (any text is kept: scoring rules and reports read it as written).
FORM_KINDS = ("contact", "demo_request", "content_download", "paid_landing", "webinar", "event", "newsletter", "trial")


def origins_from_text(text: str) -> list[str]:
    """Allowed origins typed one per line → the list, or a ValidationError naming the bad line."""
    origins = []
    for number, line in enumerate(text.splitlines(), start=1):
        origin = line.strip().rstrip("/")
        if not origin:
            continue
        if origin == "*":
            origins.append(origin)
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or " " in origin
        ):
            raise forms.ValidationError(
                f"Line {number}: “{line.strip()}” is not an origin. Origins start with http:// or https:// and "
                "have a host and no path, e.g. https://www.example.com (or * for any site)."
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise forms.ValidationError(f"Line {number}: “{line.strip()}” has a port that is not a number.") from None
        origins.append(origin.lower())
    return origins


class WebFormForm(forms.ModelForm):
    """Every setting of a web form. The same class creates and edits (the slug only on create:
    the embed snippets on websites post to it)."""

    allowed_origins_text = forms.CharField(
        required=False,
        label="Allowed origins",
        help_text="One per line, e.g. https://www.example.com. Leave empty to allow posts from any site.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    honeypot_field = forms.CharField(
        required=False,
        max_length=50,
        label="Spam trap field",
        help_text="A hidden field people never fill in; a submission that fills it is kept as spam. Default: website.",
    )

    class Meta:
        model = Form
        fields = [
            "name",
            "slug",
            "kind",
            "channel",
            "channel_weight",
            "allowed_origins_text",
            "honeypot_field",
            "overwrite_profile",
            "success_message",
            "redirect_url",
            "double_opt_in",
            "active",
        ]
        labels = {
            "channel_weight": "Channel weight",
            "overwrite_profile": "Later submissions overwrite the profile",
            "success_message": "Success message",
            "redirect_url": "Redirect URL",
            "double_opt_in": "Double opt-in",
        }
        help_texts = {
            "kind": "What the form is for, e.g. demo_request or content_download.",
            "channel_weight": "Points a submission of this form is worth in scoring (channels are not equal).",
            "overwrite_profile": "Off: a known lead only gets its blank fields filled.",
            "success_message": "Shown on your page after a successful submission.",
            "redirect_url": "If set, the visitor is sent here instead of seeing the message.",
            "double_opt_in": "Send one confirmation email; marketing emails start only once the person clicks it.",
        }
        widgets = {"kind": forms.TextInput(attrs={"list": "form-kinds"})}

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["slug"]
            self.initial["allowed_origins_text"] = "\n".join(self.instance.allowed_origins or [])
        else:
            self.initial.setdefault("active", True)
            self.initial.setdefault("honeypot_field", "website")

    def clean_allowed_origins_text(self) -> list[str]:
        return origins_from_text(self.cleaned_data["allowed_origins_text"])

    def clean_honeypot_field(self) -> str:
        return self.cleaned_data["honeypot_field"].strip() or "website"

    def clean_redirect_url(self) -> str:
        url = self.cleaned_data["redirect_url"].strip()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise forms.ValidationError("Use a full address starting with http:// or https://.")
        return url

    def api_data(self) -> dict:
        """The cleaned settings in the shape of ``FormSerializer`` (the API's validation and audit)."""
        data = {name: value for name, value in self.cleaned_data.items() if name != "allowed_origins_text"}
        data["allowed_origins"] = self.cleaned_data["allowed_origins_text"]
        return data

    def preview_form(self, slug: str) -> Form:
        """An unsaved Form with what is typed so far (invalid values fall back to the defaults)."""
        form = Form(slug=slugify(slug)[:100] or "your-form")
        raw = self.data
        form.honeypot_field = raw.get("honeypot_field", "").strip()[:50] or "website"
        form.success_message = raw.get("success_message", "")[:300]
        redirect_url = raw.get("redirect_url", "").strip()
        form.redirect_url = redirect_url if redirect_url.startswith(("http://", "https://")) else ""
        return form


def _save_errors(form: WebFormForm, serializer: FormSerializer) -> None:
    place_field_errors(form, serializer.errors, renames={"allowed_origins": "allowed_origins_text"})


def _endpoint(slug: str) -> str:
    return f"{settings.SITE_URL}/api/v1/forms/{slug}/submit/"


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
        serializer = FormSerializer(data=form.api_data())
        if serializer.is_valid():
            created, _data = save_audited(serializer, actor=request.user, entity="form", created_by=request.user)
            cache.delete(dashboard.FORMS_CACHE_KEY)
            messages.success(request, f"Form “{created.name}” created. Paste the snippet below on your site.")
            return redirect("dashboard:form", slug=created.slug)
        _save_errors(form, serializer)
    status = 400 if request.method == "POST" else 200
    snippet = dashboard.form_snippet(form.preview_form(request.POST.get("slug", "")), _endpoint("your-form"))
    context = {"nav": "forms", "form": form, "snippet": snippet, "kinds": FORM_KINDS}
    return render(request, "forms/create.html", context, status=status)


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def form_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit every setting of a form (not its slug), through the API's serializer, audited like PATCH."""
    item = Form.objects.filter(slug=slug).first()
    if item is None:
        raise Http404("No such form.")
    form = WebFormForm(request.POST or None, instance=item, editing=True)
    if request.method == "POST" and form.is_valid():
        # A fresh copy: the page's form has already written its values onto ``item``.
        serializer = FormSerializer(Form.objects.get(pk=item.pk), data=form.api_data(), partial=True)
        if serializer.is_valid():
            saved, _data = save_audited(serializer, actor=request.user, entity="form")
            cache.delete(dashboard.FORMS_CACHE_KEY)
            messages.success(request, f"Form “{saved.name}” saved. The snippet on your site keeps working.")
            return redirect("dashboard:form", slug=saved.slug)
        _save_errors(form, serializer)
    status = 400 if request.method == "POST" else 200
    preview = form.preview_form(item.slug) if request.method == "POST" else item
    snippet = dashboard.form_snippet(preview, _endpoint(item.slug))
    context = {"nav": "forms", "form": form, "item": item, "snippet": snippet, "kinds": FORM_KINDS}
    return render(request, "forms/edit.html", context, status=status)


@require_POST
@role_required(marketer=True)
def form_snippet_preview(request: HttpRequest) -> HttpResponse:
    """The embed snippet for the settings typed so far (htmx, as the editor changes); nothing saved."""
    form = WebFormForm(request.POST)
    slug = request.POST.get("slug") or request.POST.get("current_slug") or ""
    preview = form.preview_form(slug)
    return render(
        request,
        "forms/_snippet.html",
        {"snippet": dashboard.form_snippet(preview, _endpoint(preview.slug)), "preview": True},
    )


@require_GET
@role_required(marketer=True)
def form_detail(request: HttpRequest, slug: str) -> HttpResponse:
    item = dashboard.form_with_counts(slug=slug)
    if item is None:
        raise Http404("No such form.")
    endpoint = _endpoint(item.slug)
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

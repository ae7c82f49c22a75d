"""Dashboard pages for the email template library (marketers and admins): list, create, edit,
delete. Thin: the nurturing services check templates with the API's messages."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required

from . import selectors, services
from .models import EmailTemplate


class EmailTemplateForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=300, help_text="Merge fields work here too, e.g. {{ lead.first_name }}.")
    body = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Plain text (blank lines make paragraphs; bare links are tracked) or HTML.",
    )


def _get_or_404(template_id: int) -> EmailTemplate:
    try:
        return selectors.email_template_get(template_id=template_id)
    except DomainError:
        raise Http404("No such email template.") from None


@require_GET
@role_required(marketer=True)
def email_templates_list(request: HttpRequest) -> HttpResponse:
    templates = selectors.email_template_list().select_related("created_by")
    return render(request, "nurturing/email_templates.html", {"nav": "sequences", "templates": templates})


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def email_template_edit(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    template = _get_or_404(template_id) if template_id is not None else None
    if request.method == "POST":
        form = EmailTemplateForm(request.POST)
        if form.is_valid():
            try:
                if template is None:
                    template = services.email_template_create(data=form.cleaned_data, actor=request.user)
                else:
                    template = services.email_template_update(
                        template=template, data=form.cleaned_data, actor=request.user
                    )
            except DomainError as exc:
                for name, problems in (exc.fields or {}).items():
                    form.add_error(name if name in form.fields else None, " ".join(problems))
                if not exc.fields:
                    form.add_error(None, exc.message)
            else:
                messages.success(request, f"Template “{template.name}” saved.")
                return redirect("nurturing_ui:email-templates")
    else:
        initial = {"name": template.name, "subject": template.subject, "body": template.body} if template else {}
        form = EmailTemplateForm(initial=initial)
    return render(
        request,
        "nurturing/email_template_edit.html",
        {"nav": "sequences", "form": form, "template": template},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@role_required(marketer=True)
def email_template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _get_or_404(template_id)
    services.email_template_delete(template=template, actor=request.user)
    messages.success(request, f"Template “{template.name}” deleted; steps built from it keep their copy.")
    return redirect("nurturing_ui:email-templates")

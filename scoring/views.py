"""Scoring dashboard: rules list and editor, settings, and the recompute progress bar.

Validation is the scoring app's own (``scoring.services`` raises ``ValidationFailed``
with the same per-field messages the API answers with); these views only turn
form text into the rule's data shape and show the messages next to the fields.
"""

import json

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required
from leads.models import InteractionType

from . import selectors, services
from .models import Dimension, RecomputeJob, RuleSource, ScoringRule
from .rules import OPERATORS, PROFILE_FIELDS

RULE_TEXT_FIELDS = ("field", "operator", "interaction_type", "property")


class RuleForm(forms.Form):
    """Form text → rule data. Only shapes values; the rules themselves are checked by the service."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    dimension = forms.ChoiceField(choices=Dimension.choices)
    source = forms.ChoiceField(choices=RuleSource.choices)
    field = forms.ChoiceField(required=False, label="Profile field")
    interaction_type = forms.ChoiceField(required=False, label="Interaction type")
    property = forms.CharField(required=False, max_length=100, label="Property (optional)")
    operator = forms.ChoiceField(required=False, choices=[("", "—"), *((op, op) for op in OPERATORS)])
    value = forms.CharField(
        required=False,
        max_length=5000,
        help_text="Text, a number, true/false, or for “in” a comma-separated list.",
    )
    points = forms.FloatField()
    use_channel_weight = forms.BooleanField(required=False, label="Use the form's channel weight as points")
    max_points = forms.FloatField(required=False, label="Cap per lead")
    half_life_days = forms.FloatField(
        required=False, label="Half-life (days)", help_text="Engagement decay; empty = none."
    )
    blocks_mql = forms.BooleanField(required=False, label="Hard negative: blocks MQL")
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["field"].choices = [("", "—"), *((name, name) for name in sorted(PROFILE_FIELDS))]
        self.fields["interaction_type"].choices = [("", "—"), *((t, t) for t in InteractionType.values)]

    def rule_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["value"] = _parse_value(data.get("value", ""), data.get("operator", ""))
        if data["source"] == RuleSource.PROFILE:
            data["interaction_type"] = ""
            data["property"] = ""
        else:
            data["field"] = ""
        for name in RULE_TEXT_FIELDS:
            data[name] = (data.get(name) or "").strip()
        return data


def _parse_value(raw: str, operator: str):
    raw = (raw or "").strip()
    if raw == "" or operator == "present":
        return None
    if operator == "in":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if operator in ("gte", "lte", "equals"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _value_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rule_initial(rule: ScoringRule) -> dict:
    return {
        "name": rule.name,
        "description": rule.description,
        "dimension": rule.dimension,
        "source": rule.source,
        "field": rule.field,
        "interaction_type": rule.interaction_type,
        "property": rule.property,
        "operator": rule.operator,
        "value": _value_text(rule.value),
        "points": rule.points,
        "use_channel_weight": rule.use_channel_weight,
        "max_points": rule.max_points,
        "half_life_days": rule.half_life_days,
        "blocks_mql": rule.blocks_mql,
        "active": rule.active,
    }


def _add_service_errors(form: forms.Form, exc: DomainError) -> None:
    placed = False
    for name, message in (exc.fields or {}).items():
        text = message if isinstance(message, str) else " ".join(str(m) for m in message)
        if name in form.fields:
            form.add_error(name, text)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class SettingsForm(forms.Form):
    mql_threshold = forms.IntegerField(min_value=0, max_value=100, label="MQL threshold")
    sales_ready_threshold = forms.IntegerField(
        min_value=0, max_value=100, required=False, label="Sales-ready threshold"
    )
    sla_hours = forms.IntegerField(min_value=1, max_value=24 * 30, label="SLA to answer an MQL (hours)")
    required_profile_fields = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Required profile for MQL"
    )
    fit_weight = forms.IntegerField(min_value=0, max_value=100, label="Fit weight")
    engagement_weight = forms.IntegerField(min_value=0, max_value=100, label="Engagement weight")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = [name for name in sorted(PROFILE_FIELDS) if not name.startswith("email_domain")]
        self.fields["required_profile_fields"].choices = [(n, n.replace("_", " ")) for n in names]


def _settings_initial(row) -> dict:
    return {
        "mql_threshold": row.mql_threshold,
        "sales_ready_threshold": row.sales_ready_threshold,
        "sla_hours": row.sla_hours,
        "required_profile_fields": row.required_profile_fields,
        "fit_weight": row.fit_weight,
        "engagement_weight": row.engagement_weight,
    }


# --- pages -----------------------------------------------------------------------------------


@require_GET
@role_required(marketer=True)
def scoring_home(request: HttpRequest) -> HttpResponse:
    settings_row = selectors.scoring_settings_get()
    return render(
        request, "scoring/home.html", _home_context(settings_row, SettingsForm(initial=_settings_initial(settings_row)))
    )


def _home_context(settings_row, settings_form) -> dict:
    rules = list(selectors.rule_list())
    return {
        "nav": "scoring",
        "settings": settings_row,
        "settings_form": settings_form,
        "fit_rules": [r for r in rules if r.dimension == Dimension.FIT],
        "engagement_rules": [r for r in rules if r.dimension != Dimension.FIT],
        "job": selectors.recompute_job_latest(),
    }


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    rule = None
    if rule_id is not None:
        rule = selectors.rule_list().filter(pk=rule_id).first()
        if rule is None:
            raise Http404("No such rule.")
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid():
            try:
                if rule is None:
                    rule = services.rule_create(actor=request.user, **form.rule_data())
                    messages.success(request, f"Rule “{rule.name}” created. Scores are being recomputed.")
                else:
                    services.rule_update(rule=rule, actor=request.user, **form.rule_data())
                    messages.success(request, f"Rule “{rule.name}” saved. Scores are being recomputed.")
            except DomainError as exc:
                _add_service_errors(form, exc)
            else:
                return redirect("scoring_ui:home")
    else:
        form = RuleForm(
            initial=_rule_initial(rule)
            if rule
            else {"active": True, "dimension": "engagement", "source": "interaction"}
        )
    return render(request, "scoring/rule_form.html", {"nav": "scoring", "form": form, "rule": rule})


@require_POST
@role_required(marketer=True)
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.rule_list().filter(pk=rule_id).first()
    if rule is None:
        raise Http404("No such rule.")
    services.rule_delete(rule=rule, actor=request.user)
    messages.success(request, f"Rule “{rule.name}” deleted. Scores are being recomputed.")
    return redirect("scoring_ui:home")


@require_POST
@role_required(marketer=True)
def settings_save(request: HttpRequest) -> HttpResponse:
    settings_row = selectors.scoring_settings_get()
    form = SettingsForm(request.POST)
    if form.is_valid():
        try:
            services.scoring_settings_update(actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(request, "Scoring settings saved.")
            return redirect("scoring_ui:home")
    return render(request, "scoring/home.html", _home_context(settings_row, form), status=400)


@require_POST
@role_required(marketer=True)
def recompute_start(request: HttpRequest) -> HttpResponse:
    services.recompute_request(actor=request.user, reason="requested from the dashboard")
    if request.headers.get("HX-Request") == "true":
        return recompute_status(request)
    messages.success(request, "Recompute started.")
    return redirect("scoring_ui:home")


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def recompute_status(request: HttpRequest) -> HttpResponse:
    """The progress partial; htmx polls it every second while a job runs."""
    job = selectors.recompute_job_latest()
    running = job is not None and job.status in (RecomputeJob.Status.PENDING, RecomputeJob.Status.RUNNING)
    percent = 0
    if job is not None:
        percent = (
            100 if job.status == RecomputeJob.Status.DONE else (int(100 * job.done / job.total) if job.total else 0)
        )
    return render(request, "scoring/_recompute.html", {"job": job, "running": running, "percent": percent})

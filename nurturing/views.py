"""Nurturing dashboard: sequences with their stats, the sequence editor, previews and enrolments.

Enrolling by hand from the leads pages posts here too: one lead from its page, or the
leads selected in the list's bulk bar. Both answer with a message and a redirect back.

The editor posts the steps as parallel lists (one row per step, in order); the view
turns them into the API's sequence shape, checks the shape with the API's input
serializer, and the nurturing services do the real validation (same messages as the API).
Goals and branch conditions are rows of the shared condition builder
(``leadfunnel.widgets``), never JSON typed by a marketer.
"""

import json

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required
from leadfunnel.validation import integer_range
from leadfunnel.widgets import (
    ConditionListField,
    ConditionVocabulary,
    condition_from_row,
    condition_to_row,
    parse_value,
    rows_from_post,
)
from leads import dashboard as lead_reads
from leads.models import Form, Lead, Stage
from leads.selectors import segment_list
from leads.views import form_error_text, safe_next

from . import selectors, services
from .conditions import INTERACTION_TYPES, LEAD_FIELDS, OPERATORS, STAGES
from .models import MESSAGE_KINDS, EnrollmentStatus, Sequence, StepKind
from .serializers import SequenceInputSerializer

WAIT_UNITS = ("minutes", "hours", "days", "seconds")
WEEKDAYS = (
    (0, "Mon"),
    (1, "Tue"),
    (2, "Wed"),
    (3, "Thu"),
    (4, "Fri"),
    (5, "Sat"),
    (6, "Sun"),
)
ACTIONS = (
    ("set_stage", "Move the lead to a stage"),
    ("notify_owner", "Email the lead's owner"),
    ("assign", "Give the lead to a sales rep"),
    ("tag", "Add or remove tags"),
    ("webhook", "Send a webhook event"),
)
# The settings each action's fields show (the step's config keys); its other keys ride along in
# the row's hidden ``step_keep``.
ACTION_KEYS = {
    "set_stage": {"stage"},
    "notify_owner": {"subject", "body"},
    "assign": {"owner"},
    "tag": {"add", "remove"},
    "webhook": {"event", "url"},
}
ENROLL_KINDS = (
    ("manual", "By hand only"),
    ("form_submitted", "A form is submitted"),
    ("stage_entered", "A stage is entered"),
    ("segment", "Matches a segment"),
)
STEP_LISTS = (
    "kind",
    "subject",
    "body",
    "subject_b",
    "ab_split",
    "ab_test_size",
    "ab_wait_hours",
    "amount",
    "unit",
    "goto",
    "else_goto",
    "action",
    "stage",
    "notify_subject",
    "notify_body",
    "owner",
    "tag_add",
    "tag_remove",
    "event",
    "url",
    "keep",
)
AB_FIELDS = ("ab_split", "ab_test_size", "ab_wait_hours")
# Each step row carries one condition row (used by branch steps), posted as step_cond-<part>.
STEP_CONDITION = "step_cond"
CONDITIONS = ConditionVocabulary(
    kinds=("interaction", "profile", "stage"),
    fields=tuple(sorted(LEAD_FIELDS)),
    operators=OPERATORS,
    interaction_types=tuple(sorted(INTERACTION_TYPES)),
    stages=tuple(sorted(STAGES)),
)
# The keys each kind of step row shows; any other key of a step's config rides along in the
# row's hidden ``step_keep`` (JSON), so saving the editor never drops a setting it does not show.
ROW_KEYS = {
    StepKind.EMAIL: {"subject", "body", "subject_b", *AB_FIELDS},
    StepKind.SMS: {"body"},
    StepKind.WAIT: set(WAIT_UNITS),
    StepKind.BRANCH: {"condition", "goto", "else_goto"},
    StepKind.ACTION: ACTION_KEYS,  # per action
}


def _shown_keys(kind: str, action) -> set[str] | None:
    shown = ROW_KEYS.get(kind)
    if isinstance(shown, dict):
        return {"action", *shown.get(action, ())}
    return shown


class SequenceForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    active = forms.BooleanField(required=False)
    stop_on_handoff = forms.BooleanField(required=False, label="Stop when the lead is handed to sales")
    reenroll = forms.ChoiceField(choices=Sequence.Reenroll.choices, label="Re-enrolment")
    enroll_kind = forms.ChoiceField(choices=ENROLL_KINDS, label="Enrol automatically when")
    enroll_form = forms.ChoiceField(required=False, label="Form")
    enroll_stage = forms.ChoiceField(required=False, choices=[("", "—"), *Stage.choices], label="Stage")
    enroll_saved_segment = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Segment", help_text="Build segments on the Segments page."
    )
    # Sequences saved before segments existed keep their inline filter; new ones pick a segment.
    enroll_segment = forms.CharField(
        required=False,
        label="Older inline filter (JSON)",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept for sequences made before saved segments; pick a segment above to replace it.",
    )
    goals = ConditionListField(
        vocabulary=CONDITIONS,
        label="Goals",
        add_label="+ Add a goal",
        help_text="Reaching any goal exits the lead: an interaction (optionally with a property match), "
        "a lead field, or a stage.",
    )
    max_messages_per_day = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=integer_range(Sequence._meta.get_field("max_messages_per_day"))[1],
        label="Messages per lead per day (cap)",
    )
    send_window_start = forms.TimeField(
        required=False,
        label="Send from (local time)",
        widget=forms.TimeInput(attrs={"type": "time", "step": 1}),
        help_text="Messages go out only between these two times, in the lead's time zone. Leave both empty for any time.",
    )
    send_window_end = forms.TimeField(
        required=False, label="Send until", widget=forms.TimeInput(attrs={"type": "time", "step": 1})
    )
    send_days = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        choices=WEEKDAYS,
        label="Send on",
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every day.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["enroll_form"].choices = [("", "—"), *Form.objects.order_by("name").values_list("slug", "name")]
        self.fields["enroll_saved_segment"].choices = [("", "—"), *segment_list().values_list("pk", "name")]

    def clean_enroll_segment(self):
        return _json_field(self.cleaned_data["enroll_segment"], default={}, kind=dict, what="The segment")

    def enroll_on(self) -> dict:
        data = self.cleaned_data
        kind = data["enroll_kind"]
        if kind == "form_submitted":
            return {"kind": kind, "form": data["enroll_form"] or None}
        if kind == "stage_entered":
            return {"kind": kind, "stage": data["enroll_stage"]}
        if kind == "segment" and (data.get("enroll_saved_segment") or not data["enroll_segment"]):
            return {"kind": kind, "segment": data.get("enroll_saved_segment")}
        if kind == "segment":
            return {"kind": kind, **data["enroll_segment"]}
        return {"kind": "manual"}


def _json_field(raw: str, *, default, kind: type, what: str):
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise forms.ValidationError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    if not isinstance(value, kind):
        raise forms.ValidationError(f"{what} must be a JSON {'object' if kind is dict else 'list'}.")
    return value


def _steps_from_post(post) -> tuple[list[dict], list[dict], dict[int, list[str]]]:
    """Rows as posted (to redisplay) and the steps in the API's shape, with per-row parse errors."""
    lists = {name: post.getlist(f"step_{name}") for name in STEP_LISTS}
    conditions = rows_from_post(post, STEP_CONDITION)
    count = len(lists["kind"])
    rows, steps, errors = [], [], {}
    for index in range(count):
        row = {name: (lists[name][index] if index < len(lists[name]) else "") for name in STEP_LISTS}
        row["cond"] = conditions[index] if index < len(conditions) else condition_to_row(None)
        rows.append(row)
        problems: list[str] = []
        step = _step_from_row(row, problems)
        if problems:
            errors[index + 1] = problems
        steps.append(step)
    return rows, steps, errors


def _int_or_text(raw: str):
    raw = (raw or "").strip()
    try:
        return int(raw)
    except ValueError:
        return raw or None


def _step_from_row(row: dict, problems: list[str]) -> dict:
    step = _shown_step(row, problems)
    kept = _json_or_none(row.get("keep"))
    shown = _shown_keys(step["kind"], step.get("action"))
    if isinstance(kept, dict) and shown is not None:
        for key, value in kept.items():
            if key not in shown and key not in step and key != "kind":
                step[key] = value
    if step["kind"] == StepKind.WAIT and "until" in step and not str(row.get("amount", "")).strip():
        problems[:] = [p for p in problems if p != "The wait needs a number."]
        step = {k: v for k, v in step.items() if k not in WAIT_UNITS}
    elif step["kind"] == StepKind.WAIT and any(unit in step for unit in WAIT_UNITS):
        step.pop("until", None)  # a duration typed in replaces a wait until a day and time
    return step


def _json_or_none(raw: str | None):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _shown_step(row: dict, problems: list[str]) -> dict:
    kind = row["kind"]
    if kind == StepKind.EMAIL:
        step = {"kind": kind, "subject": row["subject"], "body": row["body"]}
        if (row["subject_b"] or "").strip():
            step["subject_b"] = row["subject_b"]
            for name in AB_FIELDS:
                if (row[name] or "").strip():
                    step[name] = parse_value(row[name], "equals")
        return step
    if kind == StepKind.SMS:
        return {"kind": kind, "body": row["body"]}
    if kind == StepKind.WAIT:
        unit = row["unit"] if row["unit"] in WAIT_UNITS else "days"
        try:
            amount = float(row["amount"])
            amount = int(amount) if amount == int(amount) else amount
        except ValueError:
            problems.append("The wait needs a number.")
            amount = None
        return {"kind": kind, unit: amount}
    if kind == StepKind.BRANCH:
        step = {"kind": kind, "condition": condition_from_row(row["cond"]), "goto": _int_or_text(row["goto"])}
        if (row["else_goto"] or "").strip():
            step["else_goto"] = _int_or_text(row["else_goto"])
        return step
    if kind == StepKind.ACTION:
        return _action_step(row)
    problems.append("Pick a kind of step.")
    return {"kind": kind}


def _action_step(row: dict) -> dict:
    """An action step from its own fields; the API's validator judges the values."""
    action = row["action"]
    step = {"kind": StepKind.ACTION, "action": action}
    if action == "set_stage":
        step["stage"] = row["stage"]
    elif action == "notify_owner":
        for key, name in (("subject", "notify_subject"), ("body", "notify_body")):
            if (row[name] or "").strip():  # empty: the default subject and body
                step[key] = row[name]
    elif action == "assign":
        step["owner"] = _int_or_text(row["owner"])
    elif action == "tag":
        for key, name in (("add", "tag_add"), ("remove", "tag_remove")):
            tags = [tag.strip() for tag in (row[name] or "").split(",") if tag.strip()]
            if tags:
                step[key] = tags
    elif action == "webhook":
        for key in ("event", "url"):
            if (row[key] or "").strip():  # no event: "sequence.step"
                step[key] = row[key].strip()
    return step


def _action_row(row: dict, config: dict) -> None:
    row["action"] = config.get("action", "")
    row["stage"] = config.get("stage", "")
    row["notify_subject"] = config.get("subject", "")
    row["notify_body"] = config.get("body", "")
    row["owner"] = str(config.get("owner", "round_robin"))
    row["tag_add"] = _tag_text(config.get("add"))
    row["tag_remove"] = _tag_text(config.get("remove"))
    row["event"] = config.get("event", "")
    row["url"] = config.get("url", "")


def _user_id(raw) -> int | None:
    raw = str(raw or "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31 else None


def _tag_text(tags) -> str:
    if isinstance(tags, list):
        return ", ".join(str(tag) for tag in tags)
    return "" if tags is None else str(tags)


def _rows_from_sequence(sequence: Sequence) -> list[dict]:
    rows = []
    for step in sequence.steps.all():
        config = dict(step.config)
        row = dict.fromkeys(STEP_LISTS, "")
        row["kind"] = step.kind
        row["cond"] = condition_to_row(config.get("condition") if step.kind == StepKind.BRANCH else None)
        shown = _shown_keys(step.kind, config.get("action"))
        if shown is not None:
            kept = {k: v for k, v in config.items() if k not in shown}
            row["keep"] = json.dumps(kept) if kept else ""
        if step.kind in MESSAGE_KINDS:
            row["subject"] = config.get("subject", "")
            row["body"] = config.get("body", "")
            for name in ("subject_b", *AB_FIELDS):
                row[name] = config.get(name, "")
        elif step.kind == StepKind.WAIT:
            for unit in WAIT_UNITS:
                if unit in config:
                    row["amount"], row["unit"] = config[unit], unit
            if "until" in config:
                row["amount"], row["unit"] = "", "days"
        elif step.kind == StepKind.BRANCH:
            row["goto"] = config.get("goto", "")
            row["else_goto"] = config.get("else_goto", "")
        elif step.kind == StepKind.ACTION:
            _action_row(row, config)
        rows.append(row)
    return rows


def _initial(sequence: Sequence) -> dict:
    enroll_on = dict(sequence.enroll_on or {"kind": "manual"})
    kind = enroll_on.pop("kind", "manual")
    return {
        "name": sequence.name,
        "description": sequence.description,
        "active": sequence.active,
        "stop_on_handoff": sequence.stop_on_handoff,
        "reenroll": sequence.reenroll,
        "enroll_kind": kind,
        "enroll_form": enroll_on.get("form", "") if kind == "form_submitted" else "",
        "enroll_stage": enroll_on.get("stage", "") if kind == "stage_entered" else "",
        "enroll_saved_segment": enroll_on.get("segment") if kind == "segment" else None,
        "enroll_segment": json.dumps(enroll_on) if kind == "segment" and "segment" not in enroll_on else "",
        "goals": sequence.goals or [],
        "max_messages_per_day": sequence.max_messages_per_day,
        "send_window_start": _clock(sequence.send_window_start),
        "send_window_end": _clock(sequence.send_window_end),
        "send_days": list(sequence.send_days or []),
    }


def _clock(value) -> str:
    if value is None:
        return ""
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _place_errors(form: forms.Form, step_errors: dict, exc_fields: dict, message: str) -> None:
    placed = False
    for name, problems in (exc_fields or {}).items():
        if name == "steps" and isinstance(problems, dict):
            for position, items in problems.items():
                step_errors.setdefault(int(position), []).extend(items)
            placed = True
            continue
        text = " ".join(problems) if isinstance(problems, list) else str(problems)
        target = {"enroll_on": "enroll_kind"}.get(name, name)
        if target in form.fields:
            form.add_error(target, text)
        else:
            form.add_error(None, f"{name}: {text}")
        placed = True
    if not placed:
        form.add_error(None, message)


# --- pages -----------------------------------------------------------------------------------


@require_GET
@role_required(marketer=True)
def sequences_list(request: HttpRequest) -> HttpResponse:
    sequences = list(selectors.sequence_list())
    stats = selectors.sequence_list_stats(sequence_ids=[s.pk for s in sequences])
    rows = [{"sequence": s, "stats": stats.get(s.pk, {})} for s in sequences]
    return render(request, "nurturing/list.html", {"nav": "sequences", "rows": rows})


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def sequence_edit(request: HttpRequest, sequence_id: int | None = None) -> HttpResponse:
    sequence = _get_or_404(sequence_id) if sequence_id is not None else None
    step_errors: dict[int, list[str]] = {}
    if request.method == "POST":
        form = SequenceForm(request.POST)
        rows, steps, step_errors = _steps_from_post(request.POST)
        if form.is_valid() and not step_errors:
            data = form.cleaned_data
            payload = {
                "name": data["name"],
                "description": data["description"],
                "active": data["active"],
                "stop_on_handoff": data["stop_on_handoff"],
                "reenroll": data["reenroll"],
                "enroll_on": form.enroll_on(),
                "goals": data["goals"],
                "max_messages_per_day": data["max_messages_per_day"],
                "send_window_start": data["send_window_start"],
                "send_window_end": data["send_window_end"],
                "send_days": sorted(data["send_days"]),
                "steps": steps,
            }
            shape = SequenceInputSerializer(data=payload)
            if not shape.is_valid():
                _place_errors(form, step_errors, shape.errors, "Check the sequence.")
            else:
                try:
                    if sequence is None:
                        sequence = services.sequence_create(data=dict(shape.validated_data), actor=request.user)
                    else:
                        services.sequence_update(sequence=sequence, data=dict(shape.validated_data), actor=request.user)
                except DomainError as exc:
                    _place_errors(form, step_errors, exc.fields, exc.message)
                else:
                    messages.success(request, f"Sequence “{sequence.name}” saved.")
                    return redirect("nurturing_ui:sequence", sequence_id=sequence.pk)
    else:
        initial = (
            _initial(sequence)
            if sequence
            else {"active": False, "stop_on_handoff": True, "reenroll": "never", "enroll_kind": "manual"}
        )
        form = SequenceForm(initial=initial)
        rows = (
            _rows_from_sequence(sequence)
            if sequence
            else [
                {
                    **dict.fromkeys(STEP_LISTS, ""),
                    "kind": "email",
                    "subject": "Hi {{ lead.first_name }}",
                    "body": "<p>…</p>",
                    "cond": condition_to_row(None),
                }
            ]
        )
    for position, row in enumerate(rows, start=1):
        row["position"] = position
        row["errors"] = step_errors.get(position, [])
    return render(
        request,
        "nurturing/edit.html",
        {
            "nav": "sequences",
            "form": form,
            "sequence": sequence,
            "rows": rows,
            "step_kinds": StepKind.values,
            "wait_units": WAIT_UNITS,
            "actions": ACTIONS,
            "stages": [(value, label) for value, label in Stage.choices if value in STAGES],
            "owners": [
                (str(user_id), label)
                for user_id, label in selectors.assign_owner_choices(
                    include_ids={_user_id(row.get("owner")) for row in rows} - {None}
                )
            ],
            "has_step_errors": bool(step_errors),
            "blank_row": {
                **dict.fromkeys(STEP_LISTS, ""),
                "kind": "email",
                "errors": [],
                "cond": condition_to_row(None),
            },
            "conditions": CONDITIONS,
            "email_templates": selectors.email_template_choices(),
        },
        status=400 if request.method == "POST" else 200,
    )


def _get_or_404(sequence_id: int) -> Sequence:
    try:
        return selectors.sequence_get(sequence_id=sequence_id)
    except DomainError:
        raise Http404("No such sequence.") from None


@require_GET
@role_required(marketer=True)
def sequence_detail(request: HttpRequest, sequence_id: int) -> HttpResponse:
    sequence = _get_or_404(sequence_id)
    status = request.GET.get("status") if request.GET.get("status") in EnrollmentStatus.values else None
    enrollments = list(selectors.enrollment_list(sequence=sequence, status=status)[:50])
    stats = selectors.sequence_stats(sequence=sequence)
    steps = {s.position: s for s in sequence.steps.all()}
    step_rows = [{"step": steps.get(row["position"]), **row} for row in stats["steps"]]
    message_steps = [s for s in steps.values() if s.kind in MESSAGE_KINDS]
    return render(
        request,
        "nurturing/detail.html",
        {
            "nav": "sequences",
            "sequence": sequence,
            "stats": stats,
            "step_rows": step_rows,
            "enrollments": enrollments,
            "status": status,
            "statuses": EnrollmentStatus.values,
            "message_steps": message_steps,
        },
    )


@require_GET
@role_required(marketer=True)
def sequence_preview(request: HttpRequest, sequence_id: int) -> HttpResponse:
    """An email or SMS step rendered for a sample lead (htmx swaps it into the detail page)."""
    sequence = _get_or_404(sequence_id)
    position = request.GET.get("position", "")
    lead_ref = (request.GET.get("lead") or "").strip()
    error, preview = None, None
    lead_id = None
    if lead_ref.isdigit():
        lead_id = int(lead_ref)
    elif lead_ref:
        lead_id = lead_reads.lead_id_by_email(email=lead_ref)
        if lead_id is None:
            error = f"No lead with the email {lead_ref}."
    if error is None:
        try:
            preview = selectors.sequence_preview(
                sequence=sequence, lead_id=lead_id, position=int(position) if position.isdigit() else None
            )
        except DomainError as exc:
            error = exc.message
    return render(request, "nurturing/_preview.html", {"preview": preview, "error": error, "sequence": sequence})


# --- enrolling by hand from the leads pages ------------------------------------------------------

BULK_ENROLL_LIMIT = 500
GONE = "That sequence or lead no longer exists."


class EnrollLeadForm(forms.Form):
    sequence = forms.IntegerField(label="Sequence", error_messages={"required": "Pick a sequence."})


class EnrollLeadsForm(forms.Form):
    """The leads list's bulk bar (its ``action`` and ``reason`` fields are the leads app's, ignored here)."""

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), error_messages={"required": "Select some leads."})
    sequence = forms.IntegerField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the enrolment service says no to leads that cannot be enrolled.
        self.fields["ids"].valid_value = lambda value: True

    def clean(self):
        data = super().clean()
        if not data.get("sequence"):
            raise forms.ValidationError("Pick a sequence to enrol the leads in.")
        if len(data.get("ids") or []) > BULK_ENROLL_LIMIT:
            raise forms.ValidationError(f"Select at most {BULK_ENROLL_LIMIT} leads at a time.")
        return data


def _enroll_one(*, sequence: Sequence | None, lead: Lead | None, actor) -> None:
    if sequence is None or lead is None:
        raise DomainError(GONE)
    services.enrollment_create(sequence=sequence, lead=lead, source="manual", actor=actor)


@require_POST
@role_required(marketer=True)
def lead_enroll(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The lead page's "Enrol in a sequence" form."""
    form = EnrollLeadForm(request.POST)
    back = safe_next(request, reverse("dashboard:lead", args=[lead_id]))
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return redirect(back)
    try:
        _enroll_one(
            sequence=Sequence.objects.filter(pk=form.cleaned_data["sequence"]).first(),
            lead=Lead.objects.filter(pk=lead_id).first(),
            actor=request.user,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Enrolled in the sequence.")
    return redirect(back)


@require_POST
@role_required(marketer=True)
def leads_enroll(request: HttpRequest) -> HttpResponse:
    """The leads list's bulk "Enrol in sequence": each selected lead on its own, failures reported by id."""
    form = EnrollLeadsForm(request.POST)
    back = safe_next(request, reverse("dashboard:leads"))
    if not form.is_valid():
        messages.error(request, " ".join(" ".join(errors) for errors in form.errors.values()))
        return redirect(back)
    lead_ids = form.cleaned_data["ids"]
    sequence = Sequence.objects.filter(pk=form.cleaned_data["sequence"]).first()
    leads = Lead.objects.in_bulk(lead_ids)
    done, failed = 0, []
    for lead_id in lead_ids:
        try:
            _enroll_one(sequence=sequence, lead=leads.get(lead_id), actor=request.user)
            done += 1
        except DomainError as exc:
            failed.append(f"#{lead_id}: {exc.message}")
    if done:
        messages.success(request, f"Enrol in sequence: done for {done} lead(s).")
    if failed:
        messages.error(request, f"{len(failed)} lead(s) not changed — " + "; ".join(failed[:5]))
    return redirect(back)

"""Segment pages: the list with live counts, the editor (a condition builder: rows of field /
operator / value and behaviour rows), a segment's page (the leads list filtered by it), the
leads list's "Save these filters as a segment", and static-list membership from the lead page,
the bulk bar and a CSV upload."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import is_marketer, role_required

from .. import dashboard, selectors, services
from ..models import InteractionType, Segment
from ..segments.builder import definition_from_filters, definition_from_rows, rows_from_definition, rows_from_post
from ..segments.conditions import (
    CHOICES,
    FIELDS,
    OPERATOR_LABELS,
    OPERATORS_BY_KIND,
    PROPERTY_OPERATORS,
    definition_errors,
    describe_condition,
)
from .common import safe_next
from .listing import render_leads_list


def _segment_or_404(segment_id: int) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment.")
    return segment


@require_GET
@role_required(marketer=True, sales=True)
def segments_list(request: HttpRequest) -> HttpResponse:
    segments = list(selectors.segment_list())
    counts = selectors.segment_counts(segments)  # one count query per segment
    rows = [
        {
            "segment": s,
            "count": counts[s.pk],
            "conditions": [describe_condition(c) for c in (s.definition or {}).get("conditions", [])],
        }
        for s in segments
    ]
    return render(
        request, "segments/list.html", {"nav": "segments", "rows": rows, "can_edit": is_marketer(request.user)}
    )


# --- the editor ----------------------------------------------------------------------------


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(choices=Segment.Kind.choices, initial=Segment.Kind.SMART)
    match = forms.ChoiceField(
        choices=(("all", "all of these conditions"), ("any", "any of these conditions")), initial="all"
    )


def _owner_id(name: str):
    user_id = get_user_model().objects.filter(username__iexact=name.strip()).values_list("pk", flat=True).first()
    return user_id if user_id is not None else name


def _builder_context() -> dict:
    operator_kinds = {}
    for kind, operators in OPERATORS_BY_KIND.items():
        for operator in operators:
            names = ("present", "empty") if operator == "present" else (operator,)
            for name in names:
                operator_kinds.setdefault(name, []).append(kind)
    operators = [
        (name, "is empty" if name == "empty" else OPERATOR_LABELS.get(name, name), " ".join(kinds))
        for name, kinds in operator_kinds.items()
    ]
    prop_operators = [(op, OPERATOR_LABELS.get(op, op)) for op in PROPERTY_OPERATORS if op != "present"]
    prop_operators += [("present", "is filled in"), ("empty", "is empty")]
    return {
        "fields": [(name, spec.label, spec.kind) for name, spec in FIELDS.items()],
        "operators": operators,
        "prop_operators": prop_operators,
        "behaviours": InteractionType.values,
        "choices": CHOICES,
        "blank_row": {"type": "field", "mode": "at_least", "at_least": "1"},
    }


def _editor(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        form = SegmentForm(request.POST)
        rows = rows_from_post(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            payload = {"name": data["name"], "description": data["description"]}
            if segment is None:
                payload["kind"] = data["kind"]
            if (segment.kind if segment else data["kind"]) == Segment.Kind.SMART:
                payload["definition"] = definition_from_rows(data["match"], rows, owner_id=_owner_id)
                errors = definition_errors(payload["definition"])
            if not errors:
                try:
                    if segment is None:
                        segment = services.segment_create(data=payload, actor=request.user)
                    else:
                        services.segment_update(segment=segment, changes=payload, actor=request.user)
                except DomainError as exc:
                    errors = exc.fields.get("definition") or [exc.message]
                else:
                    messages.success(request, f"Segment “{segment.name}” saved.")
                    return redirect("dashboard:segment", segment.pk)
    else:
        initial = {"kind": Segment.Kind.SMART, "match": "all"}
        rows = []
        if segment is not None:
            initial = {
                "name": segment.name,
                "description": segment.description,
                "kind": segment.kind,
                "match": (segment.definition or {}).get("match", "all"),
            }
            rows = rows_from_definition(segment.definition or {})
        form = SegmentForm(initial=initial)
    if segment is not None:
        form.fields["kind"].disabled = True
    context = {
        "nav": "segments",
        "form": form,
        "segment": segment,
        "rows": rows or [_builder_context()["blank_row"]],
        "errors": errors,
        **_builder_context(),
    }
    return render(request, "segments/edit.html", context, status=400 if errors or form.errors else 200)


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def segment_create(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    return _editor(request, _segment_or_404(segment_id))


@require_POST
@role_required(marketer=True)
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment_or_404(segment_id)
    services.segment_delete(segment=segment, actor=request.user)
    messages.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("dashboard:segments")


# --- the leads list's "save these filters" ----------------------------------------------------


@require_POST
@role_required(marketer=True)
def segment_from_filters(request: HttpRequest) -> HttpResponse:
    back = safe_next(request, reverse("dashboard:leads"))
    params = request.POST.copy()
    filters = dashboard.lead_filters_from_params(params)
    try:
        if filters.errors:
            raise DomainError(" ".join(filters.errors))
        definition = definition_from_filters(filters, request.user)
        segment = services.segment_create(
            data={"name": request.POST.get("segment_name", ""), "definition": definition}, actor=request.user
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    count = selectors.segment_count(segment)
    messages.success(request, f"Segment “{segment.name}” saved: {count} lead{'s' if count != 1 else ''} now.")
    return redirect("dashboard:segment", segment.pk)


# --- static lists ---------------------------------------------------------------------------


@require_POST
@role_required(marketer=True)
def segment_members(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Add (``action=add``: lead ``ids`` or a CSV ``file`` of emails) or remove (``action=remove``)
    leads of a static list; from the lead page and the segment page."""
    segment = _segment_or_404(segment_id)
    back = safe_next(request, reverse("dashboard:segment", args=[segment.pk]))
    action = request.POST.get("action", "add")
    try:
        upload = request.FILES.get("file")
        if upload is not None:
            added, unknown = services.segment_members_import_csv(segment=segment, raw=upload.read(), actor=request.user)
            text = f"{added} lead(s) added to “{segment.name}”."
            if unknown:
                text += f" {len(unknown)} email(s) match no lead: " + ", ".join(unknown[:5])
            messages.success(request, text)
        elif action == "remove":
            removed = services.segment_members_remove(
                segment=segment, lead_ids=request.POST.getlist("ids"), actor=request.user
            )
            messages.success(request, f"{removed} lead(s) removed from “{segment.name}”.")
        else:
            ids = request.POST.getlist("ids")
            if not ids:
                raise DomainError("Choose a CSV file of emails, or leads to add.")
            added = services.segment_members_add(segment=segment, lead_ids=ids, actor=request.user)
            messages.success(request, f"{added} lead(s) added to “{segment.name}”.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(back)


@require_POST
@role_required(marketer=True)
def lead_list_membership(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The lead page's "Lists" panel: put the lead on a static list."""
    back = safe_next(request, reverse("dashboard:lead", args=[lead_id]))
    segment = Segment.objects.filter(pk=request.POST.get("list") or 0).first()
    if segment is None:
        messages.error(request, "Pick a list.")
        return redirect(back)
    try:
        added = services.segment_members_add(segment=segment, lead_ids=[lead_id], actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Added to “{segment.name}”." if added else f"Already on “{segment.name}”.")
    return redirect(back)


@require_GET
@role_required(marketer=True, sales=True)
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    """A segment's page: its members as the leads list shows them (same filters, sort, bulk bar)."""
    return render_leads_list(request, segment=_segment_or_404(segment_id))

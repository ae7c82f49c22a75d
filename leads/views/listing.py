"""The leads list (filters, a saved segment among them, sort, cursor pages, the CSV export link)
and its bulk bar, which marks the selected leads — or every lead of the chosen segment — as MQL
(one set-based move), adds or removes a tag (one statement), disqualifies them, or adds them to /
removes them from a static list. A segment's page is this list filtered by the segment."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import is_marketer, role_required

from .. import dashboard, exports, selectors, services
from ..models import RejectionReason, Segment, Stage
from ..segments.conditions import describe_condition
from .common import safe_next

# Bulk actions on a whole segment: the set-based ones take this many leads at once; disqualifying
# goes lead by lead (each its own history row and events), so it takes as many as a selection.
SEGMENT_BULK_LIMIT = {"mark_mql": 5000, "add_to_list": 10_000, "remove_from_list": 10_000, "disqualify": 500}


@require_GET
@role_required(marketer=True, sales=True)
def leads_list(request: HttpRequest) -> HttpResponse:
    return render_leads_list(request)


def render_leads_list(request: HttpRequest, *, segment: Segment | None = None) -> HttpResponse:
    """The leads list; on a segment's page (``segment`` given) filtered by that segment."""
    params = request.GET.copy()
    if segment is not None:
        params["segment"] = str(segment.pk)
    filters = dashboard.lead_filters_from_params(params)
    qs = _leads_queryset(filters, request.user)
    page = dashboard.leads_page(
        qs=qs, sort=request.GET.get("sort", ""), cursor=request.GET.get("cursor", ""), count=not filters.q
    )
    params.pop("cursor", None)
    if segment is not None:
        params.pop("segment", None)  # the page's own URL says which segment
    next_params = params.copy()
    if page.next_cursor:
        next_params["cursor"] = page.next_cursor
    segments = list(selectors.segment_list().values_list("pk", "name", "kind"))  # the picker and the lists
    context = {
        "nav": "segments" if segment is not None else "leads",
        "filters": filters,
        "page": page,
        "stages": Stage.choices,
        "sorts": [(key, label) for key, (_, label) in dashboard.SORTS.items()],
        "owners": _owner_choices(),
        "sources": dashboard.lead_sources(),
        "filter_query": params.urlencode(),
        "next_query": next_params.urlencode() if page.next_cursor else "",
        "is_first_page": not request.GET.get("cursor"),
        "export_url": _export_url(params if segment is None else _with_segment(params, segment)),
        "can_bulk": is_marketer(request.user),
        "rejection_reasons": RejectionReason.choices,
        "segments": [(pk, name) for pk, name, _ in segments],
        "static_lists": [(pk, name) for pk, name, kind in segments if kind == Segment.Kind.STATIC],
        "segment": segment or (Segment.objects.filter(pk=filters.segment).first() if filters.segment else None),
        "segment_page": segment is not None,
        "save_query": params.urlencode(),
    }
    if context["segment"] is not None:
        current = context["segment"]
        context["segment_conditions"] = [
            describe_condition(c) for c in (current.definition or {}).get("conditions", [])
        ]
    return render(request, "leads/list.html", context)


def _leads_queryset(filters, user):
    return dashboard.leads_filtered(filters=filters, user=user)


def _owner_choices() -> list:
    return list(
        get_user_model()
        .objects.filter(groups__name="sales", is_active=True)
        .order_by("username")
        .values_list("id", "username")[:200]
    )


def _with_segment(params, segment: Segment):
    scoped = params.copy()
    scoped["segment"] = str(segment.pk)
    return scoped


def _export_url(params) -> str:
    """The list's own query string (every filter and the sort) on the list's export."""
    query = params.urlencode()
    return reverse("dashboard:leads-export") + ("?" + query if query else "")


@require_GET
@role_required(marketer=True)
def leads_export(request: HttpRequest) -> HttpResponse:
    """Exactly the list on screen, every page of it, as CSV: the list's filters are read by the
    same parser (``dashboard.lead_filters_from_params``) and applied by the same query
    (``dashboard.leads_filtered``), in the list's order."""
    filters = dashboard.lead_filters_from_params(request.GET)
    if filters.errors:
        return HttpResponse(" ".join(filters.errors), status=400, content_type="text/plain; charset=utf-8")
    qs = dashboard.leads_sorted(
        qs=_leads_queryset(filters, request.user), sort=request.GET.get("sort", "")
    ).select_related("owner")
    response = StreamingHttpResponse(exports.leads_export_rows(qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="leads.csv"'
    return response


class BulkForm(forms.Form):
    """The bulk bar's stage and list actions, on the selected leads or (``scope=segment``) on every
    lead of the segment the list shows. Its "Enrol" button posts the selection to /sequences/enroll/."""

    ACTIONS = (
        ("mark_mql", "Mark as MQL"),
        ("disqualify", "Disqualify"),
        ("add_tag", "Add tag"),
        ("remove_tag", "Remove tag"),
        ("add_to_list", "Add to list"),
        ("remove_from_list", "Remove from list"),
    )
    TAG_ACTIONS = ("add_tag", "remove_tag")
    action = forms.ChoiceField(
        choices=ACTIONS,
        error_messages={
            "invalid_choice": "Pick “Mark as MQL”, “Disqualify” or a list action; to enrol the leads, pick a "
            "sequence and press Enrol."
        },
    )
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=False)
    reason = forms.CharField(required=False, max_length=500)
    tag = forms.CharField(required=False, max_length=200, strip=False)
    scope = forms.ChoiceField(
        choices=(("selected", "Selected leads"), ("segment", "Every lead of the segment")), required=False
    )
    segment = forms.IntegerField(required=False)
    list = forms.IntegerField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the services say no to leads that cannot move.
        self.fields["ids"].valid_value = lambda value: True

    def clean(self):
        data = super().clean()
        if data.get("action") in ("mark_mql", "disqualify") and not data.get("reason", "").strip():
            raise forms.ValidationError("Give a reason; it is kept in each lead's history.")
        if data.get("action") in self.TAG_ACTIONS and not data.get("tag", "").strip():
            raise forms.ValidationError("Type the tag to add or remove.")
        if data.get("action") in ("add_to_list", "remove_from_list") and not data.get("list"):
            raise forms.ValidationError("Pick the list.")
        if data.get("scope") == "segment":
            if not data.get("segment"):
                raise forms.ValidationError("Pick a segment first.")
        elif not data.get("ids"):
            raise forms.ValidationError("Select some leads.")
        if len(data.get("ids") or []) > 500:
            raise forms.ValidationError("Select at most 500 leads at a time.")
        return data


@require_POST
@role_required(marketer=True)
def leads_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    back = safe_next(request, reverse("dashboard:leads"))
    if not form.is_valid():
        messages.error(request, " ".join(" ".join(errors) for errors in form.errors.values()))
        return redirect(back)
    data = form.cleaned_data
    if data.get("scope") == "segment":
        try:
            data["ids"] = _segment_lead_ids(data["segment"], action=data["action"])
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect(back)
    done, failed = 0, []
    if data["action"] in ("add_to_list", "remove_from_list"):
        return _bulk_list_action(request, data, back)
    if data["action"] == "mark_mql":  # one set-based move for all of them
        try:
            changes = services.leads_mark_mql(lead_ids=data["ids"], actor=request.user, reason=data["reason"])
        except DomainError as exc:
            changes = None
            failed.append(exc.message)
        if changes is not None:
            done = len(changes.transitions)
            failed += [f"#{lead_id}: {why}" for lead_id, why in changes.skipped.items()]
    elif data["action"] in BulkForm.TAG_ACTIONS:  # one statement for all of them
        side = "add" if data["action"] == "add_tag" else "remove"
        try:
            done = len(services.leads_tag(lead_ids=data["ids"], actor=request.user, **{side: [data["tag"]]}))
        except DomainError as exc:
            failed.append(exc.message)
    else:
        for lead_id in data["ids"]:
            try:
                services.lead_disqualify(lead=lead_id, actor=request.user, reason=data["reason"], reason_code="other")
                done += 1
            except DomainError as exc:
                failed.append(f"#{lead_id}: {exc.message}")
    if done:
        messages.success(request, f"{dict(BulkForm.ACTIONS)[data['action']]}: done for {done} lead(s).")
    if failed:
        messages.error(request, f"{len(failed)} lead(s) not changed — " + "; ".join(failed[:5]))
    return redirect(back)


def _segment_lead_ids(segment_id: int, *, action: str) -> list[int]:
    segment = selectors.segment_get(segment_id=segment_id)
    limit = SEGMENT_BULK_LIMIT[action]
    ids = list(selectors.segment_leads(segment=segment).order_by("pk").values_list("pk", flat=True)[: limit + 1])
    if len(ids) > limit:
        raise DomainError(
            f"“{segment.name}” has more than {limit:,} leads; this action takes at most {limit:,} at a time."
        )
    if not ids:
        raise DomainError(f"“{segment.name}” has no leads.")
    return ids


def _bulk_list_action(request: HttpRequest, data: dict, back: str) -> HttpResponse:
    target = Segment.objects.filter(pk=data["list"]).first()
    try:
        if target is None:
            raise DomainError("That list no longer exists.")
        if data["action"] == "add_to_list":
            added = services.segment_members_add(segment=target, lead_ids=data["ids"], actor=request.user)
            messages.success(request, f"Added {added} lead(s) to “{target.name}”.")
        else:
            removed = services.segment_members_remove(segment=target, lead_ids=data["ids"], actor=request.user)
            messages.success(request, f"Removed {removed} lead(s) from “{target.name}”.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(back)

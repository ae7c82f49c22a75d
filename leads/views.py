"""Dashboard pages for leads: funnel overview, leads list and detail, the sales queue and pipeline, forms.

Views are thin: they parse input with a Django form, call a selector or a service
and render a template (a whole page, or the partial htmx asked for). Business
rules (who may accept, which moves are legal) live in ``leads.services``; a
``DomainError`` from a service becomes a message on the page.
"""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.audit import audit_record
from leadfunnel.errors import DomainError
from leadfunnel.roles import is_marketer, is_sales, role_required
from scoring.selectors import lead_score_get

from . import analytics, dashboard, services
from .models import Form, LossReason, RejectionReason, Stage
from .serializers import FormSerializer

# --- access ---------------------------------------------------------------------------------
# role_required (login page for anonymous callers, 403 without the role) lives in leadfunnel.roles.


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` URL the form carries, if it points back at this site; else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


# --- funnel overview (home) ---------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not is_marketer(request.user):
        if is_sales(request.user):
            return redirect("dashboard:queue")
        raise PermissionDenied("Your account has no role yet; ask an admin to add you to marketing or sales.")
    return funnel_overview(request)


FUNNEL_CACHE_SECONDS = 60


def funnel_overview(request: HttpRequest) -> HttpResponse:
    period = dashboard.period_from_params(request.GET)
    group_by = request.GET.get("group_by") if request.GET.get("group_by") in dashboard.GROUPINGS else "source"
    # Aggregates over the whole stage history: computed at most once a minute per period and grouping.
    key = f"dashboard:funnel:{period.since.isoformat()}:{period.until.isoformat()}:{group_by}"
    summary, durations, computed_at = cache.get_or_set(
        key,
        lambda: (
            analytics.funnel_summary(since=period.since, until=period.until, group_by=dashboard.GROUPINGS[group_by]),
            analytics.stage_durations(since=period.since, until=period.until),
            timezone.now(),
        ),
        FUNNEL_CACHE_SECONDS,
    )
    stays = durations["groups"][0]["stages"] if durations["groups"] else {}
    medians = {
        stage: (round(stay["median_hours"] / 24, 1) if stay.get("median_hours") is not None else None)
        for stage, stay in stays.items()
    }
    totals = summary["totals"]
    sla_count, sla_leads = dashboard.mqls_past_sla()
    context = {
        "nav": "funnel",
        "period": period,
        "periods": list(dashboard.PERIODS),
        "group_by": group_by,
        "groupings": list(dashboard.GROUPINGS),
        "steps": _funnel_steps(totals, medians, period),
        "pql": {
            "count": totals["entries"]["pql"],
            "median_days": medians.get("pql"),
            "rate": _conversion(totals, "pql", "sal"),
            "link": _entered_link("pql", period),
        },
        "summary": {
            "rejections": totals["rejections"],
            "recycles": totals["recycles"],
            "mql_sal_ratio": totals["mql_sal_ratio"],
        },
        "groups": [_group_row(g, group_by, period) for g in summary["groups"]],
        "sla_count": sla_count,
        "sla_leads": sla_leads,
        "trend": _trend_chart(cache.get_or_set("dashboard:weekly-trend", dashboard.weekly_trend, FUNNEL_CACHE_SECONDS)),
        "rejection_labels": dict(RejectionReason.choices),
        "computed_at": computed_at,
    }
    return render(request, "dashboard/funnel.html", context)


def _entered_link(stage: str, period, **extra) -> str:
    params = {"entered": stage, "since": period.since_date.isoformat(), "until": period.until_date.isoformat()}
    params.update({k: v for k, v in extra.items() if v not in (None, "")})
    return "/leads/?" + urlencode(params)


def _conversion(group: dict, from_stage: str, to_stage: str) -> float | None:
    for conversion in group["conversions"]:
        if conversion["from"] == from_stage and conversion["to"] == to_stage:
            return conversion["rate"]
    return None


def _funnel_steps(totals: dict, medians: dict, period) -> list[dict]:
    entries = totals["entries"]
    top = max(entries["visitor"], 1)
    steps = []
    previous = None
    for stage in dashboard.FUNNEL_STAGES:
        count = entries[str(stage)]
        steps.append(
            {
                "stage": str(stage),
                "label": Stage(stage).label,
                "count": count,
                "width": max(round(100 * count / top, 1), 1.5),
                "rate": _conversion(totals, previous, str(stage)) if previous else None,
                "median_days": medians.get(str(stage)),
                "link": _entered_link(str(stage), period),
            }
        )
        previous = str(stage)
    return steps


def _group_row(group: dict, group_by: str, period) -> dict:
    key = group["key"]
    extra = {group_by: key} if key not in (None, "") else {}
    entries = group["entries"]
    return {
        "label": group["label"] if key not in (None, "") else "(none)",
        "entries": entries,
        "links": {s: _entered_link(s, period, **extra) for s in ("visitor", "mql", "pql", "sal", "sql", "customer")},
        "linkable": bool(extra),
        "mql_sal_rate": _conversion(group, "mql", "sal"),
        "sal_sql_rate": _conversion(group, "sal", "sql"),
        "sql_customer_rate": _conversion(group, "sql", "customer"),
        "rejected": group["rejections"]["total"],
    }


def _trend_chart(trend: dict, width: int = 1000, height: int = 200, pad: int = 28) -> dict:
    """Polylines for a small server-rendered SVG line chart (no chart library needed)."""
    weeks = trend["weeks"]
    top = max([max(values) for values in trend["series"].values()] + [1])
    step = (width - 2 * pad) / max(len(weeks) - 1, 1)
    series = []
    for stage, values in trend["series"].items():
        points = " ".join(
            f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}" for i, v in enumerate(values)
        )
        series.append({"stage": str(stage), "label": Stage(stage).label, "points": points, "total": sum(values)})
    labels = [
        {"x": round(pad + i * step, 1), "text": week.strftime("%d %b")}
        for i, week in enumerate(weeks)
        if i % 2 == 0 or i == len(weeks) - 1
    ]
    rows = [{"week": week, **{str(s): trend["series"][s][i] for s in trend["series"]}} for i, week in enumerate(weeks)]
    return {"width": width, "height": height, "pad": pad, "top": top, "series": series, "labels": labels, "rows": rows}


# --- leads list -----------------------------------------------------------------------------


@require_GET
@role_required(marketer=True, sales=True)
def leads_list(request: HttpRequest) -> HttpResponse:
    filters = dashboard.lead_filters_from_params(request.GET)
    qs = _leads_queryset(filters, request.user)
    page = dashboard.leads_page(
        qs=qs, sort=request.GET.get("sort", ""), cursor=request.GET.get("cursor", ""), count=not filters.q
    )
    params = request.GET.copy()
    params.pop("cursor", None)
    next_params = params.copy()
    if page.next_cursor:
        next_params["cursor"] = page.next_cursor
    context = {
        "nav": "leads",
        "filters": filters,
        "page": page,
        "stages": Stage.choices,
        "sorts": [(key, label) for key, (_, label) in dashboard.SORTS.items()],
        "owners": _owner_choices(),
        "sources": dashboard.lead_sources(),
        "filter_query": params.urlencode(),
        "next_query": next_params.urlencode() if page.next_cursor else "",
        "is_first_page": not request.GET.get("cursor"),
        "export_url": _export_url(filters, request.user),
        "can_bulk": is_marketer(request.user),
        "rejection_reasons": RejectionReason.choices,
    }
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


def _export_url(filters, user) -> str:
    """The streamed CSV export endpoint with the filters it understands (stage, owner, score, source, search)."""
    params = {
        "stage": ",".join(filters.stage),
        "owner": str(user.pk) if filters.owner == "me" else filters.owner,
        "min_score": "" if filters.score_min is None else str(filters.score_min),
        "source": filters.source,
        "search": filters.q,
    }
    query = urlencode({k: v for k, v in params.items() if v})
    return "/api/v1/leads/export.csv" + ("?" + query if query else "")


class BulkForm(forms.Form):
    """The bulk bar's stage actions. Its "Enrol" button posts the same selection to /sequences/enroll/."""

    ACTIONS = (("mark_mql", "Mark as MQL"), ("disqualify", "Disqualify"))
    action = forms.ChoiceField(
        choices=ACTIONS,
        error_messages={
            "invalid_choice": "Pick “Mark as MQL” or “Disqualify”; to enrol the leads, pick a sequence and press Enrol."
        },
    )
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), error_messages={"required": "Select some leads."})
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the services say no to leads that cannot move.
        self.fields["ids"].valid_value = lambda value: True

    def clean(self):
        data = super().clean()
        if data.get("action") in ("mark_mql", "disqualify") and not data.get("reason", "").strip():
            raise forms.ValidationError("Give a reason; it is kept in each lead's history.")
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
    done, failed = 0, []
    for lead_id in data["ids"]:
        try:
            if data["action"] == "mark_mql":
                services.lead_mark_mql(lead=lead_id, actor=request.user, reason=data["reason"])
            else:
                services.lead_disqualify(lead=lead_id, actor=request.user, reason=data["reason"], reason_code="other")
            done += 1
        except DomainError as exc:
            failed.append(f"#{lead_id}: {exc.message}")
    if done:
        messages.success(request, f"{dict(BulkForm.ACTIONS)[data['action']]}: done for {done} lead(s).")
    if failed:
        messages.error(request, f"{len(failed)} lead(s) not changed — " + "; ".join(failed[:5]))
    return redirect(back)


# --- lead detail ------------------------------------------------------------------------------


@require_GET
@role_required(marketer=True, sales=True)
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = dashboard.lead_for_detail(lead_id=lead_id)
    if lead is None:
        raise Http404("No such lead.")
    return render(request, "leads/detail.html", _lead_detail_context(request, lead))


def _lead_detail_context(request: HttpRequest, lead) -> dict:
    transitions = list(lead.transitions.all())
    interactions = dashboard.lead_interactions(lead_id=lead.pk)
    cycles: dict[int, list] = {}
    for transition in transitions:
        cycles.setdefault(transition.cycle, []).append(transition)
    return {
        "nav": "leads",
        "lead": lead,
        "cycles": sorted(cycles.items()),
        "timeline": dashboard.timeline_merge(interactions=interactions, transitions=transitions),
        "score": _score_breakdown(lead),
        "opportunities": list(lead.opportunities.all()),
        "actions": _allowed_actions(request.user, lead),
        "rejection_reasons": RejectionReason.choices,
        "loss_reasons": LossReason.choices,
        "qualify_form": QualifyForm(),
    }


def _score_breakdown(lead) -> dict:
    """The scoring app's explanation: points per rule (with caps and decay) and the ledger."""
    data = lead_score_get(lead=lead)
    rules = sorted(data.get("rules", []), key=lambda r: -abs(r.get("current_points") or 0))
    return {
        "available": True,
        "data": data,
        "rules": rules,
        "rows": [_contribution_row(c) for c in data.get("contributions", [])],
    }


def _contribution_row(contribution) -> dict:
    def get(name, default=None):
        if isinstance(contribution, dict):
            return contribution.get(name, default)
        return getattr(contribution, name, default)

    rule = get("rule")
    return {
        "rule": get("rule_name") or get("name") or getattr(rule, "name", None) or rule or "",
        "dimension": get("dimension", ""),
        "points": get("current_points", get("points", 0)),
        "awarded": get("points", 0),
        "reason": get("reason", ""),
        "at": get("at"),
    }


def _allowed_actions(user, lead) -> set[str]:
    actions: set[str] = set()
    owns = lead.owner_id == user.pk or user.is_superuser
    if is_sales(user) and owns:
        if lead.stage in (Stage.MQL, Stage.PQL):
            actions |= {"accept", "reject"}
        if lead.stage == Stage.SAL:
            actions |= {"qualify"}
        if lead.stage == Stage.SQL:
            actions |= {"close"}
        if lead.stage in (Stage.MQL, Stage.PQL, Stage.SAL, Stage.SQL):
            actions |= {"disqualify"}
    if is_marketer(user) and lead.stage in (Stage.VISITOR, Stage.RECYCLED, Stage.LOST):
        actions |= {"mark_mql", "disqualify"}
    return actions


# --- stage actions (detail page, queue and pipeline post here) --------------------------------


class RejectForm(forms.Form):
    reason = forms.ChoiceField(choices=RejectionReason.choices, error_messages={"required": "Pick a reason."})
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


class QualifyForm(forms.Form):
    buying_cycle = forms.CharField(max_length=2000, label="Buying cycle")
    influencer = forms.CharField(max_length=2000, label="Who has influence")
    timeframe = forms.CharField(max_length=200)
    opportunity_size = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0, label="Opportunity size")
    next_step = forms.CharField(max_length=2000, label="Next step (permission given)")
    budget = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)


class CloseForm(forms.Form):
    won = forms.TypedChoiceField(choices=(("1", "Won"), ("0", "Lost")), coerce=lambda v: v == "1")
    reason = forms.ChoiceField(choices=[("", "—"), *LossReason.choices], required=False)
    note = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("won") is False and not data.get("reason"):
            raise forms.ValidationError("Say why the deal was lost.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, error_messages={"required": "Give a reason."})
    reason_code = forms.ChoiceField(choices=[("", "—"), *RejectionReason.choices], required=False)


def _run_action(action: str, *, lead_id: int, data: dict, user):
    if action == "accept":
        return services.lead_accept(lead=lead_id, actor=user)
    if action == "reject":
        return services.lead_reject(lead=lead_id, actor=user, reason_code=data["reason"], reason=data.get("note", ""))
    if action == "qualify":
        return services.lead_qualify(
            lead=lead_id,
            actor=user,
            buying_cycle=data["buying_cycle"],
            influencer=data["influencer"],
            timeframe=data["timeframe"],
            opportunity_size=data["opportunity_size"],
            next_step=data["next_step"],
            budget=data.get("budget"),
        )
    if action == "close":
        return services.lead_close(
            lead=lead_id, actor=user, won=data["won"], reason_code=data.get("reason", ""), reason=data.get("note", "")
        )
    if action == "disqualify":
        return services.lead_disqualify(
            lead=lead_id, actor=user, reason=data["reason"], reason_code=data.get("reason_code") or "other"
        )
    if action == "mark_mql":
        return services.lead_mark_mql(lead=lead_id, actor=user, reason=data["reason"])
    raise Http404("Unknown action.")


ACTION_FORMS = {
    "accept": None,
    "reject": RejectForm,
    "qualify": QualifyForm,
    "close": CloseForm,
    "disqualify": ReasonForm,
    "mark_mql": ReasonForm,
}
ACTION_DONE = {
    "accept": "Accepted: the lead is now a SAL in your pipeline.",
    "reject": "Rejected: the lead went back to marketing with your reason.",
    "qualify": "Qualified: the lead is an SQL and has an opportunity.",
    "close": "Closed.",
    "disqualify": "Disqualified.",
    "mark_mql": "Marked as MQL and routed to sales.",
}


@require_POST
@role_required(marketer=True, sales=True)
def lead_action(request: HttpRequest, lead_id: int, action: str) -> HttpResponse:
    if action not in ACTION_FORMS:
        raise Http404("Unknown action.")
    form_class = ACTION_FORMS[action]
    form = form_class(request.POST) if form_class else None
    back = safe_next(request, reverse("dashboard:lead", args=[lead_id]))
    error = None
    if form is not None and not form.is_valid():
        error = form_error_text(form)
    else:
        try:
            _run_action(action, lead_id=lead_id, data=form.cleaned_data if form else {}, user=request.user)
        except DomainError as exc:
            error = exc.message
    if is_htmx(request) and request.POST.get("fragment") == "card":
        return _card_response(request, lead_id=lead_id, action=action, error=error, form=form)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, ACTION_DONE[action])
    return redirect(back)


def form_error_text(form) -> str:
    """A form's errors as one message line, each prefixed with its field's label."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields and form.fields[name].label else name
        prefix = "" if name == "__all__" else f"{str(label).replace('_', ' ').capitalize()}: "
        parts.append(prefix + " ".join(errors))
    return " ".join(parts)


def _card_response(request: HttpRequest, *, lead_id: int, action: str, error: str | None, form) -> HttpResponse:
    """What htmx swaps in for a queue or pipeline card after an action."""
    if error:
        lead = dashboard.lead_for_detail(lead_id=lead_id)
        if lead is None:
            raise Http404("No such lead.")
        template = "sales/_queue_card.html" if lead.stage in (Stage.MQL, Stage.PQL) else "sales/_pipeline_card.html"
        context = _queue_context([lead]) if lead.stage in (Stage.MQL, Stage.PQL) else {}
        card = context.get("cards", [{"lead": lead}])[0] if context else {"lead": lead}
        return render(
            request,
            template,
            {
                "card": card,
                "lead": lead,
                "error": error,
                "rejection_reasons": RejectionReason.choices,
                "loss_reasons": LossReason.choices,
                "qualify_form": form if action == "qualify" else QualifyForm(),
                "open_qualify": action == "qualify",
            },
        )
    return render(request, "sales/_card_done.html", {"message": ACTION_DONE[action], "lead_id": lead_id})


# --- sales queue and pipeline -----------------------------------------------------------------


@require_GET
@role_required(sales=True)
def queue(request: HttpRequest) -> HttpResponse:
    leads, totals = dashboard.queue_leads(user=request.user)
    context = {
        "nav": "queue",
        **_queue_context(leads),
        "totals": totals,
        "rejection_reasons": RejectionReason.choices,
    }
    return render(request, "sales/queue.html", context)


def _queue_context(leads: list) -> dict:
    ids = [lead.pk for lead in leads]
    actions = dashboard.key_actions(lead_ids=ids)
    why = dashboard.qualifying_transitions(lead_ids=ids)
    breakdowns = _breakdowns_for(leads)
    cards = [
        {
            "lead": lead,
            "actions": actions.get(lead.pk, []),
            "transition": why.get(lead.pk),
            "rules": breakdowns.get(lead.pk, []),
        }
        for lead in leads
    ]
    return {"cards": cards}


def _breakdowns_for(leads: list) -> dict[int, list[dict]]:
    """The rules that gave each lead most points, for all cards in one query."""
    found = dashboard.rule_totals_for(leads=leads)
    return {lead_id: [_contribution_row(c) for c in items][:5] for lead_id, items in found.items()}


@require_GET
@role_required(sales=True)
def pipeline(request: HttpRequest) -> HttpResponse:
    groups = dashboard.pipeline_leads(user=request.user)
    return render(
        request,
        "sales/pipeline.html",
        {
            "nav": "pipeline",
            "sals": groups["sal"],
            "sqls": groups["sql"],
            "totals": groups["totals"],
            "qualify_form": QualifyForm(),
            "loss_reasons": LossReason.choices,
            "rejection_reasons": RejectionReason.choices,
        },
    )


# --- forms ---------------------------------------------------------------------------------------


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
    return render(
        request,
        "forms/detail.html",
        {"nav": "forms", "item": item, "endpoint": endpoint, "snippet": dashboard.form_snippet(item, endpoint)},
    )

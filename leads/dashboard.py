"""Reads behind the dashboard pages that no other module offers (yet).

Each function here returns plain data for one page region with a fixed number
of queries, whatever the number of rows. Where the owning app ships a selector
(``leads.selectors``, ``leads.analytics``, ``scoring.selectors``) the views call
that instead; what stays here is specific to how the dashboard shows things
(keyset pages, queue cards). Reads about sequences and enrolments belong to the
sequences app, which renders its own regions of the leads pages (template tags).
"""

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Window, prefetch_related_objects
from django.db.models.functions import RowNumber, TruncWeek
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date

from leadfunnel.errors import ValidationFailed
from leadfunnel.validation import InvalidInput, integer_range, parse_datetime, refuse_nul
from scoring.models import LeadRuleTotal

from .funnel import AWAITING_SALES
from .intake import normalise_tag
from .models import Form, Interaction, Lead, Opportunity, Segment, Stage, StageTransition
from .selectors import LeadFilter

FUNNEL_STAGES = (Stage.VISITOR, Stage.MQL, Stage.SAL, Stage.SQL, Stage.CUSTOMER)
ENTERED_STAGES = (Stage.MQL, Stage.PQL, Stage.SAL, Stage.SQL, Stage.CUSTOMER)
PERIODS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
DEFAULT_PERIOD = "90d"
# Funnel table grouping (also the leads-list filter parameter) → leads.analytics group_by.
GROUPINGS = {"source": "source", "channel": "channel", "form": "form", "campaign": "utm_campaign", "owner": "owner"}
# Interactions that tell a rep most about intent (shown on queue cards).
KEY_ACTION_TYPES = (
    "demo_request",
    "trial_started",
    "product_usage",
    "webinar_attended",
    "event_attended",
    "trade_show_visit",
    "content_download",
    "form_submit",
    "page_view",
    "email_click",
)


# --- period ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    key: str

    @property
    def since_date(self) -> date:
        return timezone.localtime(self.since).date()

    @property
    def until_date(self) -> date:
        # The last day included (``until`` is exclusive, at midnight).
        return timezone.localtime(self.until - timedelta(seconds=1)).date()

    def as_query(self) -> str:
        return f"since={self.since_date.isoformat()}&until={self.until_date.isoformat()}"


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


# Days a page accepts in its query string: the day after and the day's start in any time zone
# must stay representable (a date outside is treated as absent or refused, never a 500).
EARLIEST_DAY, LATEST_DAY = date(1, 1, 3), date(9999, 12, 29)


def _day_param(raw: str | None) -> date | None:
    """A day from the query string, or None when absent, unreadable (2026-02-30) or out of range."""
    return _date_or_none(raw, [], "day")


def period_from_params(params) -> Period:
    """A period from ``?period=30d`` or ``?since=YYYY-MM-DD&until=YYYY-MM-DD`` (both days included)."""
    since, until = _day_param(params.get("since")), _day_param(params.get("until"))
    today = timezone.localdate()
    if since or until:
        until = until or today
        since = since or max(until - timedelta(days=PERIODS[DEFAULT_PERIOD] - 1), EARLIEST_DAY)
        if since > until:
            since, until = until, since
        return Period(_day_start(since), _day_start(until + timedelta(days=1)), "custom")
    key = params.get("period") if params.get("period") in PERIODS else DEFAULT_PERIOD
    start = today - timedelta(days=PERIODS[key] - 1)
    return Period(_day_start(start), _day_start(today + timedelta(days=1)), key)


# --- funnel overview ------------------------------------------------------------------


def weekly_trend(*, weeks: int = 12, scope=None) -> dict:
    """Leads created and stage entries per week for the last ``weeks`` weeks (oldest first);
    ``scope`` (a query of lead ids, e.g. a segment's) limits it to those leads."""
    today = timezone.localdate()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    since = _day_start(first_monday)
    per_week: dict[date, dict[str, int]] = {
        first_monday + timedelta(weeks=i): {str(s): 0 for s in FUNNEL_STAGES} for i in range(weeks)
    }
    leads = Lead.objects.all() if scope is None else Lead.objects.filter(pk__in=scope)
    transitions = StageTransition.objects.all() if scope is None else StageTransition.objects.filter(lead_id__in=scope)
    created = (
        leads.filter(created_at__gte=since)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(n=Count("id"))
    )
    for row in created:
        per_week.setdefault(_as_date(row["week"]), {})[Stage.VISITOR] = row["n"]
    entered = (
        transitions.filter(at__gte=since, to_stage__in=FUNNEL_STAGES[1:])
        .annotate(week=TruncWeek("at"))
        .values("week", "to_stage")
        .annotate(n=Count("lead_id", distinct=True))
    )
    for row in entered:
        per_week.setdefault(_as_date(row["week"]), {})[row["to_stage"]] = row["n"]
    ordered = sorted(per_week.items())
    return {"weeks": [w for w, _ in ordered], "series": {s: [v.get(s, 0) for _, v in ordered] for s in FUNNEL_STAGES}}


def _as_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def mqls_past_sla(*, limit: int = 10, scope=None) -> tuple[int, list[Lead]]:
    now = timezone.now()
    qs = Lead.objects.filter(stage__in=list(AWAITING_SALES), sla_due_at__lt=now)
    if scope is not None:
        qs = qs.filter(pk__in=scope)
    return qs.count(), list(qs.select_related("owner").order_by("sla_due_at")[:limit])


# --- leads list ---------------------------------------------------------------------------

SORTS = {
    "-created_at": ("-created_at", "Newest"),
    "created_at": ("created_at", "Oldest"),
    "-score": ("-score", "Highest score"),
    "score": ("score", "Lowest score"),
    "-stage_changed_at": ("-stage_changed_at", "Recent stage change"),
}
DEFAULT_SORT = "-created_at"
PAGE_SIZE = 50
COUNT_CAP = 10_000


@dataclass
class LeadFilters:
    q: str = ""
    stage: list[str] = field(default_factory=list)
    owner: str = ""  # user id, "me" or "none"
    score_min: int | None = None
    score_max: int | None = None
    source: str = ""
    channel: str = ""
    form: str = ""  # slug of the first form
    campaign: str = ""
    tag: str = ""
    created_from: date | None = None
    created_to: date | None = None
    entered: str = ""  # a stage entered in [since, until] (funnel drill-down)
    since: date | None = None
    until: date | None = None
    segment: int | None = None  # a saved segment's id: only its members
    errors: list[str] = field(default_factory=list)


def _int_or_none(raw: str | None, errors: list[str], name: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        errors.append(f"{name} must be a whole number.")
        return None


def _date_or_none(raw: str | None, errors: list[str], name: str) -> date | None:
    if not raw:
        return None
    try:
        parsed = parse_date(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        errors.append(f"{name} must be a date (YYYY-MM-DD).")
    elif not EARLIEST_DAY <= parsed <= LATEST_DAY:
        errors.append(f"{name} is out of range ({EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}).")
        parsed = None
    return parsed


def lead_filters_from_params(params) -> LeadFilters:
    errors: list[str] = []
    stages = [s for s in params.getlist("stage") if s]
    unknown = [s for s in stages if s not in Stage.values]
    if unknown:
        errors.append("Unknown stage: " + ", ".join(unknown))
    entered = params.get("entered", "")
    if entered and entered not in Stage.values:
        errors.append(f"Unknown stage: {entered}")
        entered = ""
    owner = params.get("owner", "")
    if owner not in ("", "me", "none") and not owner.isdigit():
        errors.append("owner must be a user, 'me' or 'none'.")
        owner = ""
    tag = params.get("tag", "")
    if tag:
        try:
            tag = normalise_tag(tag)
        except ValidationFailed as exc:
            errors.append(exc.message)
            tag = ""
    segment = _int_or_none(params.get("segment"), errors, "Segment")
    if segment is not None and not Segment.objects.filter(pk=segment).exists():
        errors.append(f"No segment with id {segment}.")
        segment = None
    return LeadFilters(
        segment=segment,
        tag=tag,
        q=params.get("q", "").strip()[:200],
        stage=[s for s in stages if s in Stage.values],
        owner=owner,
        score_min=_int_or_none(params.get("score_min"), errors, "Minimum score"),
        score_max=_int_or_none(params.get("score_max"), errors, "Maximum score"),
        source=params.get("source", "").strip()[:100],
        channel=params.get("channel", "").strip()[:20],
        form=params.get("form", "").strip()[:100],
        campaign=params.get("campaign", "").strip()[:200],
        created_from=_date_or_none(params.get("created_from"), errors, "Created from"),
        created_to=_date_or_none(params.get("created_to"), errors, "Created to"),
        entered=entered,
        since=_date_or_none(params.get("since"), errors, "Since"),
        until=_date_or_none(params.get("until"), errors, "Until"),
        errors=errors,
    )


def leads_filtered(*, filters: LeadFilters, user) -> QuerySet[Lead]:
    """The API's own filters (``leads.selectors.LeadFilter``, a saved segment among them) plus the
    dashboard's drill-downs (entered a stage in a period, UTM campaign)."""
    data = QueryDict(mutable=True)
    simple = {
        "search": filters.q,
        "owner": str(user.pk) if filters.owner == "me" else filters.owner,
        "min_score": "" if filters.score_min is None else str(filters.score_min),
        "max_score": "" if filters.score_max is None else str(filters.score_max),
        "source": filters.source,
        "channel": filters.channel,
        "form": filters.form,
        "stage": ",".join(filters.stage),
        "tag": filters.tag,
        "created_after": _day_start(filters.created_from).isoformat() if filters.created_from else "",
        "created_before": _day_start(filters.created_to + timedelta(days=1)).isoformat() if filters.created_to else "",
        "segment": "" if filters.segment is None else str(filters.segment),
    }
    for key, value in simple.items():
        if value:
            data[key] = value
    qs = LeadFilter(data, queryset=Lead.objects.all()).qs
    if filters.campaign:
        qs = qs.filter(utm_campaign=filters.campaign)
    if filters.entered:
        since = _day_start(filters.since) if filters.since else None
        until = _day_start(filters.until + timedelta(days=1)) if filters.until else None
        if filters.entered == Stage.VISITOR:
            if since:
                qs = qs.filter(created_at__gte=since)
            if until:
                qs = qs.filter(created_at__lt=until)
        else:
            entries = StageTransition.objects.filter(lead=OuterRef("pk"), to_stage=filters.entered)
            if since:
                entries = entries.filter(at__gte=since)
            if until:
                entries = entries.filter(at__lt=until)
            qs = qs.filter(Exists(entries))
    return qs


def leads_sorted(*, qs: QuerySet[Lead], sort: str) -> QuerySet[Lead]:
    """The list's order (a ``SORTS`` key, else the default), ties broken by id as the pages are."""
    order = SORTS[sort if sort in SORTS else DEFAULT_SORT][0]
    return qs.order_by(order, "-id" if order.startswith("-") else "id")


def _encode_cursor(values: list) -> str:
    raw = json.dumps(values, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        return None
    return values if isinstance(values, list) and len(values) == 2 else None


def _cursor_values(values: list, *, field_name: str) -> list | None:
    """A cursor's (value, last id) as the sort column's type, if the database can compare it;
    None for a tampered cursor (the first page is shown)."""
    value, last_id = values
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id < 2**63:
        return None
    if value is None:
        return [value, last_id]
    model_field = Lead._meta.get_field(field_name)
    try:
        if field_name.endswith("_at"):
            return [parse_datetime(value, field="cursor"), last_id]
        value = model_field.to_python(value)
        refuse_nul(value)
    except (InvalidInput, DjangoValidationError, TypeError, ValueError):
        return None
    if isinstance(value, int):
        low, high = integer_range(model_field)
        if (low is not None and value < low) or (high is not None and value > high):
            return None
    return [value, last_id]


@dataclass
class LeadPage:
    leads: list[Lead]
    next_cursor: str | None
    total: int | None  # None: not counted (a text search would scan every lead to count)
    total_capped: bool
    sort: str


def leads_page(
    *, qs: QuerySet[Lead], sort: str, cursor: str = "", page_size: int = PAGE_SIZE, count: bool = True
) -> LeadPage:
    """One page by keyset (sort value, id): constant cost at any depth, no OFFSET.

    The total is counted up to ``COUNT_CAP`` rows only (shown as "more than 10,000"), so a
    broad filter over 100k leads does not pay for a full count on every page; with
    ``count=False`` (text searches, which no index serves) it is not counted at all.
    """
    sort = sort if sort in SORTS else DEFAULT_SORT
    field_name = SORTS[sort][0].lstrip("-")
    descending = SORTS[sort][0].startswith("-")
    page_qs = qs
    values = _decode_cursor(cursor) if cursor else None
    if values is not None:
        values = _cursor_values(values, field_name=field_name)
    if values is not None:
        value, last_id = values
        op = "lt" if descending else "gt"
        page_qs = page_qs.filter(Q(**{f"{field_name}__{op}": value}) | Q(**{field_name: value, f"id__{op}": last_id}))
    order = (f"-{field_name}", "-id") if descending else (field_name, "id")
    rows = list(page_qs.select_related("owner", "company").order_by(*order)[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_cursor = _encode_cursor([getattr(last, field_name), last.id])
    if not count:
        return LeadPage(rows, next_cursor, None, False, sort)
    total = qs.order_by()[: COUNT_CAP + 1].count()
    return LeadPage(rows, next_cursor, min(total, COUNT_CAP), total > COUNT_CAP, sort)


def lead_sources() -> list[str]:
    """Sources for the filter menu: a DISTINCT over every lead, so cached for a few minutes."""

    def load() -> list[str]:
        return list(
            Lead.objects.exclude(source="").values_list("source", flat=True).order_by("source").distinct()[:100]
        )

    return cache.get_or_set("dashboard:lead-sources", load, 300)


# --- lead detail --------------------------------------------------------------------------


def lead_for_detail(*, lead_id: int) -> Lead | None:
    return (
        Lead.objects.select_related("owner", "company", "first_form")
        .prefetch_related(
            Prefetch(
                "transitions",
                queryset=StageTransition.objects.select_related("actor", "owner").order_by("at", "id"),
            ),
            Prefetch("opportunities", queryset=Opportunity.objects.order_by("-created_at")),
        )
        .filter(pk=lead_id)
        .first()
    )


def lead_interactions(*, lead_id: int, limit: int = 50) -> list[Interaction]:
    return list(Interaction.objects.filter(lead_id=lead_id).order_by("-occurred_at", "-id")[:limit])


def timeline_merge(*, interactions: list, transitions: list, limit: int = 60) -> list[dict]:
    """Interactions (incl. messages sent) and stage changes as one list, newest first."""
    items = [{"kind": "interaction", "at": i.occurred_at, "obj": i} for i in interactions]
    items += [{"kind": "stage", "at": t.at, "obj": t} for t in transitions]
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


# --- sales queue and pipeline --------------------------------------------------------------


QUEUE_LIMIT = 25


def queue_leads(*, user, limit: int = QUEUE_LIMIT) -> tuple[list[Lead], dict]:
    """A rep's leads awaiting an answer (MQL/PQL), oldest SLA first (index lead_queue_idx),
    at most ``limit`` of them, with the totals (waiting, past SLA) in one aggregate."""
    waiting = Lead.objects.filter(owner=user, stage__in=list(AWAITING_SALES), erased_at__isnull=True)
    totals = waiting.aggregate(total=Count("id"), breached=Count("id", filter=Q(sla_due_at__lt=timezone.now())))
    leads = list(
        waiting.select_related("company", "first_form").order_by(F("sla_due_at").asc(nulls_last=True), "id")[:limit]
    )
    return leads, totals


def queue_expansions(*, user, limit: int = QUEUE_LIMIT) -> list[Opportunity]:
    """The rep's open expansion opportunities (customers who want more), oldest first: one query."""
    return list(
        Opportunity.objects.filter(kind=Opportunity.Kind.EXPANSION, status=Opportunity.Status.OPEN, lead__owner=user)
        .select_related("lead", "lead__company")
        .order_by("created_at", "id")[:limit]
    )


def key_actions(*, lead_ids: list[int], per_lead: int = 4) -> dict[int, list[Interaction]]:
    """The latest few intent-revealing interactions per lead, in one query (window function)."""
    if not lead_ids:
        return {}
    ranked = (
        Interaction.objects.filter(lead_id__in=lead_ids, type__in=KEY_ACTION_TYPES)
        .annotate(rank=Window(RowNumber(), partition_by="lead_id", order_by=("-occurred_at", "-id")))
        .filter(rank__lte=per_lead)
        .only("id", "lead_id", "type", "occurred_at", "properties")
    )
    result: dict[int, list[Interaction]] = {lead_id: [] for lead_id in lead_ids}
    for interaction in ranked:
        result[interaction.lead_id].append(interaction)
    for items in result.values():
        items.sort(key=lambda i: i.occurred_at, reverse=True)
    return result


def qualifying_transitions(*, lead_ids: list[int]) -> dict[int, StageTransition]:
    """The transition that put each lead in the queue (its ``details`` say which rules fired)."""
    if not lead_ids:
        return {}
    ranked = (
        StageTransition.objects.filter(lead_id__in=lead_ids, to_stage__in=list(AWAITING_SALES))
        .annotate(rank=Window(RowNumber(), partition_by="lead_id", order_by=("-at", "-id")))
        .filter(rank=1)
    )
    return {t.lead_id: t for t in ranked}


def pipeline_leads(*, user, limit: int = QUEUE_LIMIT) -> dict:
    """A rep's SALs and SQLs, longest in stage first, at most ``limit`` of each, with totals."""
    mine = Lead.objects.filter(owner=user, erased_at__isnull=True)
    totals = mine.filter(stage__in=[Stage.SAL, Stage.SQL]).aggregate(
        sal=Count("id", filter=Q(stage=Stage.SAL)), sql=Count("id", filter=Q(stage=Stage.SQL))
    )
    open_opportunities = Prefetch(
        "opportunities",
        queryset=Opportunity.objects.filter(status=Opportunity.Status.OPEN).order_by("-created_at"),
        to_attr="open_opportunities",
    )

    def column(stage: str) -> list[Lead]:
        return list(mine.filter(stage=stage).select_related("company").order_by("stage_changed_at", "id")[:limit])

    sals = column(Stage.SAL)
    sqls = column(Stage.SQL)
    prefetch_related_objects(sqls, open_opportunities)
    return {"sal": sals, "sql": sqls, "totals": totals}


# --- forms ----------------------------------------------------------------------------------


def _forms_annotated() -> QuerySet[Form]:
    week_ago = timezone.now() - timedelta(days=7)
    return Form.objects.annotate(
        submission_count=Count("submissions", filter=Q(submissions__is_spam=False)),
        submissions_7d=Count(
            "submissions", filter=Q(submissions__is_spam=False, submissions__received_at__gte=week_ago)
        ),
        spam_count=Count("submissions", filter=Q(submissions__is_spam=True)),
    )


FORMS_CACHE_KEY = "dashboard:forms-with-counts"


def forms_with_counts() -> list[Form]:
    """Forms with submission counts (an aggregate over every submission): cached for a minute,
    dropped when a form is created."""
    return cache.get_or_set(FORMS_CACHE_KEY, lambda: list(_forms_annotated().order_by("-active", "name")), 60)


def form_with_counts(*, slug: str) -> Form | None:
    return _forms_annotated().filter(slug=slug).first()


SNIPPET_TEMPLATE = """<form id="leadfunnel-{slug}" class="leadfunnel-form">
  <input name="email" type="email" placeholder="Work email" required>
  <input name="first_name" placeholder="First name">
  <input name="last_name" placeholder="Last name">
  <input name="title" placeholder="Job title">
  <input name="company" placeholder="Company">
  <!-- Spam trap: leave hidden and empty. -->
  <input name="{honeypot}" tabindex="-1" autocomplete="off" style="position:absolute;left:-9999px" aria-hidden="true">
  <!-- Filled by the tracking script (lf-track.js) when the page runs it: earlier page views count. -->
  <input name="lf_visitor" type="hidden"><input name="lf_site" type="hidden">
  <label><input name="consent" type="checkbox" value="true"> Keep me informed</label>
  <button type="submit">Send</button>
  <p class="leadfunnel-message" hidden></p>
</form>
<script>
(function () {{
  var form = document.getElementById("leadfunnel-{slug}");
  form.addEventListener("submit", function (event) {{
    event.preventDefault();
    var data = Object.fromEntries(new FormData(form).entries());
    if (!data.lf_visitor && window.lfTrack && window.lfTrack.visitorId) data.lf_visitor = window.lfTrack.visitorId();
    var params = new URLSearchParams(window.location.search);
    ["utm_source", "utm_medium", "utm_campaign"].forEach(function (key) {{
      if (params.get(key)) data[key] = params.get(key);
    }});
    data.page_url = window.location.href;
    var message = form.querySelector(".leadfunnel-message");
    fetch("{endpoint}", {{
      method: "POST",
      headers: {{"Content-Type": "application/json", "Idempotency-Key": String(Date.now()) + Math.random()}},
      body: JSON.stringify(data)
    }}).then(function (response) {{
      return response.json().then(function (body) {{
        if (!response.ok) throw new Error(body.message || "Please check the form and try again.");
        {on_success}
      }});
    }}).catch(function (error) {{
      message.textContent = error.message;
      message.hidden = false;
    }});
  }});
}})();
</script>"""


def _js(value: str) -> str:
    # A JS string literal that cannot close the surrounding <script> element.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def form_snippet(form: Form, endpoint: str) -> str:
    """The HTML/JS a marketer pastes on a website; posts JSON to the public intake with fetch."""
    if form.redirect_url:
        on_success = f"window.location.href = {_js(form.redirect_url)};"
    else:
        on_success = (
            f"form.reset(); message.textContent = {_js(form.success_message or 'Thank you!')}; message.hidden = false;"
        )
    return SNIPPET_TEMPLATE.format(
        slug=form.slug, honeypot=form.honeypot_field or "website", endpoint=endpoint, on_success=on_success
    )


# --- score explanations for many leads (queue cards) ------------------------------------------


def rule_totals_for(*, leads: list[Lead], per_lead: int = 5) -> dict[int, list[dict]]:
    """Per lead, the rules that gave it the most points (awarded, before decay), in one query."""
    if not leads:
        return {}
    rows = (
        LeadRuleTotal.objects.filter(lead_id__in=[lead.pk for lead in leads], matches__gt=0)
        .exclude(points=0)
        .select_related("rule")
        .only("lead_id", "dimension", "points", "matches", "last_at", "rule__name", "rule__active")
    )
    result: dict[int, list[dict]] = {}
    for row in rows:
        if not row.rule.active:
            continue
        result.setdefault(row.lead_id, []).append(
            {"name": row.rule.name, "dimension": row.dimension, "points": row.points, "at": row.last_at}
        )
    for items in result.values():
        items.sort(key=lambda item: -abs(item["points"]))
        del items[per_lead:]
    return result


# --- lookups for other apps' pages ------------------------------------------------------------


def lead_id_by_email(*, email: str) -> int | None:
    return Lead.objects.filter(email=email.strip().lower()).values_list("pk", flat=True).first()

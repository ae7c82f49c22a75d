"""Dashboard page "Scoring insights": the predictive model, back-tests (compare, then apply) and
channel quality. Thin views over the same services as the API; marketers and admins only.

The back-test's rule changes are built from rows (change a rule's points or switch it off, leave
rules out, try new rules whose condition is a row of the shared condition builder); the rows
become the API's ``rules_diff`` and the back-test service checks it with the API's messages.
"""

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required
from leadfunnel.widgets import ConditionVocabulary, condition_from_row, condition_to_row, parse_value, rows_from_post
from leads.models import InteractionType

from ..models import Dimension
from ..rules import OPERATORS, PROFILE_FIELDS
from ..selectors import rule_list
from . import backtest, channel_quality, prediction, runs
from .api import parse_period
from .models import BacktestJob, PredictiveModel
from .tasks import recompute_backtest, train_predictive_model

JOBS_SHOWN = 5
RULE_CONDITIONS = ConditionVocabulary(
    kinds=("interaction", "profile"),
    fields=tuple(sorted(PROFILE_FIELDS)),
    operators=tuple(OPERATORS),
    interaction_types=tuple(InteractionType.values),
)
NEW_RULE_CONDITION = "add_cond"
ACTIVE_CHOICES = (("", "keep as is"), ("on", "switch on"), ("off", "switch off"))


def _number(raw: str):
    """Points as typed: a number, or the text itself so the rule check names the problem."""
    value = parse_value(raw, "equals")
    return value if value != "" else None


def rules_diff_from_post(post) -> dict | None:
    """The back-test form's rows → the API's ``rules_diff`` (None when no change is asked for)."""
    diff: dict[str, list] = {}
    updates = []
    for rule_id, points, active in zip(
        post.getlist("change_rule"), post.getlist("change_points"), post.getlist("change_active"), strict=False
    ):
        if not rule_id.strip():
            continue
        change: dict = {"id": int(rule_id) if rule_id.strip().isdigit() else rule_id}
        if points.strip():
            change["points"] = _number(points)
        if active in ("on", "off"):
            change["active"] = active == "on"
        updates.append(change)
    if updates:
        diff["update"] = updates
    removes = [int(v) if v.isdigit() else v for v in post.getlist("remove_rule") if v.strip()]
    if removes:
        diff["remove"] = removes
    added = []
    conditions = rows_from_post(post, NEW_RULE_CONDITION)
    rows = zip(post.getlist("add_name"), post.getlist("add_dimension"), post.getlist("add_points"), strict=False)
    for index, (name, dimension, points) in enumerate(rows):
        condition = condition_from_row(conditions[index]) if index < len(conditions) else {}
        if not name.strip() and not points.strip():
            continue
        source = "interaction" if "interaction_type" in condition else "profile"
        added.append(
            {"name": name.strip(), "dimension": dimension, "source": source, **condition, "points": _number(points)}
        )
    if added:
        diff["add"] = added
    return diff or None


def backtest_rows_from_post(post) -> dict:
    """The rule-change rows as posted, to show them again when the back-test is refused."""
    conditions = rows_from_post(post, NEW_RULE_CONDITION)
    rows = zip(post.getlist("add_name"), post.getlist("add_dimension"), post.getlist("add_points"), strict=False)
    return {
        "changes": [
            {"rule": rule, "points": points, "active": active}
            for rule, points, active in zip(
                post.getlist("change_rule"), post.getlist("change_points"), post.getlist("change_active"), strict=False
            )
        ],
        "remove": set(post.getlist("remove_rule")),
        "new_rules": [
            {
                "name": name,
                "dimension": dimension,
                "points": points,
                "cond": conditions[i] if i < len(conditions) else {},
            }
            for i, (name, dimension, points) in enumerate(rows)
        ],
        "threshold": post.get("mql_threshold", ""),
    }


def _insights_page(request: HttpRequest, *, form_rows: dict | None = None, status: int = 200) -> HttpResponse:
    params = request.POST if form_rows is not None else request.GET
    group_by = request.GET.get("group_by") or "channel"
    if group_by not in channel_quality.GROUP_BY:
        group_by = "channel"
    try:
        since, until = parse_period(params.get("since"), params.get("until"))
    except DomainError as exc:
        if form_rows is None:
            messages.error(request, exc.message)
        since, until = parse_period(None, None)
    jobs = list(BacktestJob.objects.select_related("created_by").order_by("-created_at")[:JOBS_SHOWN])
    form_rows = form_rows or {"changes": [], "remove": set(), "new_rules": [], "threshold": ""}
    return render(
        request,
        "scoring/insights.html",
        {
            "nav": "scoring",
            "active": prediction.predictive_model_active(),
            "latest": prediction.predictive_model_latest(),
            "quality": channel_quality.channel_quality(since=since, until=until, group_by=group_by),
            "group_choices": sorted(channel_quality.GROUP_BY),
            "since": since.date().isoformat(),
            "until": until.date().isoformat(),
            "jobs": jobs,
            "threshold": form_rows["threshold"] or request.GET.get("threshold", ""),
            "rules": list(rule_list().order_by("dimension", "name").only("id", "name", "points", "active")),
            "dimensions": Dimension.choices,
            "active_choices": ACTIVE_CHOICES,
            "conditions": RULE_CONDITIONS,
            "blank_change": {"rule": "", "points": "", "active": ""},
            "blank_rule": {
                "name": "",
                "dimension": "",
                "points": "",
                "cond": condition_to_row(None) | {"kind": "interaction"},
            },
            "form_rows": form_rows,
        },
        status=status,
    )


@require_GET
@role_required(marketer=True)
def insights(request: HttpRequest) -> HttpResponse:
    return _insights_page(request)


@require_POST
@role_required(marketer=True)
def train(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        row, _created = runs.predictive_model_request(user=request.user)
        if row.status == PredictiveModel.Status.QUEUED:
            transaction.on_commit(lambda: train_predictive_model.delay(row.pk))
    messages.success(request, f"Training of model v{row.version} started; this page shows the result when done.")
    return redirect("predictive_ui:insights")


@require_POST
@role_required(marketer=True)
def backtest_start(request: HttpRequest) -> HttpResponse:
    data = request.POST
    try:
        overrides = {}
        if data.get("mql_threshold", "").strip():
            try:
                overrides["mql_threshold"] = int(data["mql_threshold"])
            except ValueError:
                raise DomainError("The MQL threshold must be a whole number.") from None
        diff = rules_diff_from_post(data)
        since, until = parse_period(data.get("since"), data.get("until"))
        job = backtest.backtest_create(user=request.user, rules_diff=diff, settings=overrides, since=since, until=until)
    except DomainError as exc:
        # Shown again with the rows as typed, so the marketer fixes the one the message names.
        messages.error(request, exc.message)
        return _insights_page(request, form_rows=backtest_rows_from_post(data), status=400)
    limit = getattr(settings, "BACKTEST_SYNC_INTERACTIONS", 20000)
    if backtest.backtest_interactions_in_scope(until=until) <= limit:
        backtest.backtest_run(job_id=job.pk)
    else:
        transaction.on_commit(lambda: recompute_backtest.delay(job.pk))
        messages.info(request, "The back-test runs in the background; reload to see its progress.")
    return redirect(reverse("predictive_ui:insights") + f"#backtest-{job.pk}")


@require_POST
@role_required(marketer=True)
def backtest_apply(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        backtest.backtest_apply(job_id=job_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The candidate is now the live scoring model; a full recompute is on its way.")
    return redirect("predictive_ui:insights")

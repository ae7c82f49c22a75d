"""The funnel API's whole answer: the sections of one view assembled in one tuned read
transaction, with the period view's heavier half computed on a second connection when the
caller is not inside a transaction, so the aggregates use two cores."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from leadfunnel.errors import ValidationFailed

from .cohort import funnel_cohort
from .common import scope_materialized
from .durations import stage_durations
from .expansions import expansion_counts
from .period import funnel_summary
from .postgres import _is_postgres
from .quality import channel_quality
from .reps import sla_report

# Memory for the sorts of one funnel report (PostgreSQL, per report transaction).
ANALYTICS_WORK_MEM = "32MB"


def funnel_report(
    *, since: datetime, until: datetime, group_by: str | None = None, view: str = "period", scope=None
) -> dict:
    """The funnel API's answer (uncached): ``view="cohort"`` → :func:`funnel_cohort`;
    ``view="period"`` → :func:`funnel_summary` plus ``stage_durations`` (its groups),
    ``channel_quality`` (``{"group_by", "groups"}``, by ``group_by`` when it is a lead
    attribute, else by channel) and ``sla`` (:func:`sla_report` without the period).
    Both views add ``expansions`` (:func:`expansion_counts`: customers' expansion opportunities,
    counted apart from the new-business funnel). Adds ``view`` and ``computed_at``. ``scope`` (a
    query of lead ids, e.g. a segment's) limits every funnel section to those leads.

    On PostgreSQL, called outside a transaction (an API request), the period view's time-in-stage
    and SLA sections are computed on a second connection while this one computes the rest, so the
    report's aggregates run on two cores at once. Inside a transaction (tests, a caller's atomic block) the
    sections run one after another, so they see that transaction's data.
    """
    if view not in ("period", "cohort"):
        raise ValidationFailed("view must be period or cohort.", fields={"view": ["Unknown view."]})
    concurrent = view == "period" and _is_postgres() and not connection.in_atomic_block
    scope = scope_materialized(scope)
    pool = ThreadPoolExecutor(max_workers=1) if concurrent else None
    try:
        other_half = (
            pool.submit(
                _on_own_connection, _period_second_half, since=since, until=until, group_by=group_by, scope=scope
            )
            if pool is not None
            else None
        )
        with transaction.atomic():
            _tune_report_transaction()
            body = _funnel_report_body(
                since=since, until=until, group_by=group_by, view=view, second_half=other_half is None, scope=scope
            )
        if other_half is not None:
            body.update(other_half.result())
            body = {key: body[key] for key in _PERIOD_KEYS}  # the sequential order
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    body["view"] = view
    body["computed_at"] = timezone.now()
    return body


_PERIOD_KEYS = (
    "since",
    "until",
    "group_by",
    "totals",
    "groups",
    "expansions",
    "stage_durations",
    "channel_quality",
    "sla",
)


def _tune_report_transaction() -> None:
    """PostgreSQL, for the current transaction: the percentiles sort tens of thousands of rows in
    memory, not on disk; parallel workers cost more to start than they save on queries this size."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('work_mem', %s, true), set_config('max_parallel_workers_per_gather', '0', true)",
                [ANALYTICS_WORK_MEM],
            )


def _on_own_connection(selector, **kwargs):
    """Run a read-only selector in this (worker) thread's own connection, then close it."""
    try:
        with transaction.atomic():
            _tune_report_transaction()
            return selector(**kwargs)
    finally:
        connection.close()


def _funnel_report_body(
    *, since: datetime, until: datetime, group_by: str | None, view: str, second_half: bool = True, scope=None
) -> dict:
    if view == "cohort":
        body = funnel_cohort(since=since, until=until, group_by=group_by, scope=scope)
        body["expansions"] = expansion_counts(since=since, until=until)
        return body
    body = funnel_summary(since=since, until=until, group_by=group_by, scope=scope)
    body["expansions"] = expansion_counts(since=since, until=until)
    quality_by = group_by if group_by in ("source", "channel", "form", "utm_campaign") else "channel"
    body["channel_quality"] = {
        "group_by": quality_by,
        "groups": channel_quality(since=since, until=until, group_by=quality_by, scope=scope),
    }
    if second_half:
        body.update(_period_second_half(since=since, until=until, group_by=group_by, scope=scope))
    return body


def _period_second_half(*, since: datetime, until: datetime, group_by: str | None, scope=None) -> dict:
    """The period view's time in stage and SLA sections (about half of its database time)."""
    report = sla_report(since=since, until=until, scope=scope)
    return {
        "stage_durations": stage_durations(since=since, until=until, group_by=group_by, scope=scope)["groups"],
        "sla": {k: v for k, v in report.items() if k not in ("since", "until")},
    }

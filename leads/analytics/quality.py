"""Channel quality: which channels, sources, forms or campaigns bring SQLs that close, and which
bring SQLs that do not — the outcome of each period's SQLs, by lead attribute."""

from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q

from leadfunnel.errors import ValidationFailed

from ..models import StageTransition
from .common import _rate, _scoped, _sort_key, _transition_grp
from .durations import _durations
from .postgres import _is_postgres, _pg_quality_raw


def channel_quality(*, since: datetime, until: datetime, group_by: str = "channel", scope=None) -> list[dict]:
    """Of the leads that became SQL in ``[since, until)``, per channel (or source, form,
    utm_campaign): how many closed won, lost, or are still open (same cycle, any time since).
    Shows which channels bring SQLs that do not close. One query.

    Returns ``[{"key", "label", "sqls", "won", "lost", "open", "win_rate"}]`` with
    ``win_rate = won / (won + lost)`` (null when nothing closed), sorted by key.
    """
    if group_by not in ("source", "channel", "form", "utm_campaign"):
        raise ValidationFailed("channel_quality groups by source, channel, form or utm_campaign.")

    def outcome(stage: str) -> Exists:
        return Exists(
            StageTransition.objects.filter(
                lead_id=OuterRef("lead_id"), cycle=OuterRef("cycle"), to_stage=stage, at__gte=OuterRef("at")
            )
        )

    if _is_postgres():
        spans = {"won": ("sql_at", "customer_at"), "lost": ("sql_at", "lost_at")}
        data = _durations(None, ["grp"], spans, unit=86400, raw=_pg_quality_raw(since, until, group_by, scope))
        rows = [
            {"grp": key[0], "sqls": entry["rows"], "won": entry["won"]["count"], "lost": entry["lost"]["count"]}
            for key, entry in data.items()
        ]
    else:
        rows = (
            _scoped(StageTransition.objects.filter(to_stage="sql", at__gte=since, at__lt=until), scope, "lead_id")
            .annotate(grp=_transition_grp(group_by), is_won=outcome("customer"), is_lost=outcome("lost"))
            .values("grp")
            .annotate(
                sqls=Count("id"),
                won=Count("id", filter=Q(is_won=True)),
                lost=Count("id", filter=Q(is_lost=True, is_won=False)),
            )
            .order_by()
        )
    result = [
        {
            "key": row["grp"],
            "label": str(row["grp"]) if row["grp"] not in (None, "") else "(none)",
            "sqls": row["sqls"],
            "won": row["won"],
            "lost": row["lost"],
            "open": row["sqls"] - row["won"] - row["lost"],
            "win_rate": _rate(row["won"], row["won"] + row["lost"]),
        }
        for row in rows
    ]
    return sorted(result, key=lambda r: _sort_key(r["key"]))

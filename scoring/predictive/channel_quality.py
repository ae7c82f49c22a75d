"""Channel quality: which channels, sources and forms bring MQLs that sales accepts and that close.

Cohort view from the recorded stage history: every entry into MQL/PQL within
``[since, until)`` starts a cohort record; what happened next to that lead (up
to its next MQL/PQL entry) is its outcome: accepted (SAL) or rejected (with the
rep's reason) or disqualified, then SQL, then won (customer) or lost (with the
reason). Two queries, whatever the number of leads.

The suggested points per group are derived from outcomes and shown, never
applied: ``10 × log2(group's customers per MQL / everyone's)``, smoothed
towards the average for small groups (``SMOOTHING`` pseudo-MQLs) and clamped to
±``MAX_SUGGESTION``. +10 means "twice as likely to end as a customer per MQL as
the average"; 0 means average.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from leads.models import Form, StageTransition

GROUP_BY = {"channel": "lead__channel", "source": "lead__source", "form": "lead__first_form__slug"}
ENTRY = ("mql", "pql")
SMOOTHING = 20.0
MAX_SUGGESTION = 25
LOW_CONFIDENCE_MQLS = 30


@dataclass
class GroupTally:
    mqls: int = 0
    accepted: int = 0
    rejected: int = 0
    disqualified: int = 0
    sqls: int = 0
    won: int = 0
    lost: int = 0
    rejection_reasons: Counter = field(default_factory=Counter)
    loss_reasons: Counter = field(default_factory=Counter)

    def add(self, other: GroupTally) -> None:
        for name in ("mqls", "accepted", "rejected", "disqualified", "sqls", "won", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejection_reasons.update(other.rejection_reasons)
        self.loss_reasons.update(other.loss_reasons)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _outcome(tally: GroupTally, stages: list[tuple[str, str, str]]) -> None:
    """Fold the transitions that followed one MQL/PQL entry into the tally."""
    tally.mqls += 1
    for from_stage, to_stage, reason_code in stages:
        if to_stage == "sal":
            tally.accepted += 1
        elif from_stage in ENTRY and to_stage == "recycled":
            tally.rejected += 1
            tally.rejection_reasons[reason_code or "unspecified"] += 1
        elif from_stage in ENTRY and to_stage == "disqualified":
            tally.disqualified += 1
            tally.rejection_reasons[reason_code or "unspecified"] += 1
        elif to_stage == "sql":
            tally.sqls += 1
        elif to_stage == "customer":
            tally.won += 1
        elif to_stage == "lost":
            tally.lost += 1
            tally.loss_reasons[reason_code or "unspecified"] += 1
        if to_stage in ("customer", "lost", "recycled", "disqualified"):
            return


def channel_tallies(*, since: datetime, until: datetime, group_by: str) -> dict[str | None, GroupTally]:
    """{group key: tally} for the MQL/PQL entries in ``[since, until)``."""
    path = GROUP_BY[group_by]
    entering = StageTransition.objects.filter(to_stage__in=ENTRY, at__gte=since, at__lt=until).values("lead_id")
    rows = (
        StageTransition.objects.filter(lead_id__in=entering, at__gte=since)
        .order_by("lead_id", "at", "id")
        .values_list("lead_id", path, "from_stage", "to_stage", "at", "reason_code")
    )
    tallies: dict[str | None, GroupTally] = {}
    current_lead = None
    open_entry: tuple[str | None, list] | None = None

    def close() -> None:
        if open_entry is not None:
            key, stages = open_entry
            _outcome(tallies.setdefault(key, GroupTally()), stages)

    for lead_id, key, from_stage, to_stage, at, reason_code in rows.iterator(chunk_size=5000):
        if lead_id != current_lead:
            close()
            current_lead, open_entry = lead_id, None
        if to_stage in ENTRY:
            close()
            # Entries after the period only end the previous record; they start none.
            open_entry = (key or None, []) if at < until else None
        elif open_entry is not None:
            open_entry[1].append((from_stage, to_stage, reason_code))
    close()
    return tallies


def suggested_points(won: int, mqls: int, overall_rate: float) -> int | None:
    if overall_rate <= 0 or mqls == 0:
        return None
    smoothed = (won + SMOOTHING * overall_rate) / (mqls + SMOOTHING)
    points = 10 * math.log2(smoothed / overall_rate)
    return max(-MAX_SUGGESTION, min(MAX_SUGGESTION, int(math.floor(points + 0.5))))


def _row(key: str | None, tally: GroupTally, overall_rate: float, outcome: str, current: dict) -> dict:
    decided = tally.accepted + tally.rejected + tally.disqualified
    closed = tally.won + tally.lost
    successes = tally.won if outcome == "customer" else tally.sqls
    return {
        "key": key,
        "label": key if key else "(none)",
        "mqls": tally.mqls,
        "accepted": tally.accepted,
        "rejected": tally.rejected,
        "disqualified": tally.disqualified,
        "awaiting_decision": tally.mqls - decided,
        "mql_to_sal_rate": _rate(tally.accepted, decided),
        "rejection_reasons": dict(tally.rejection_reasons.most_common()),
        "sqls": tally.sqls,
        "won": tally.won,
        "lost": tally.lost,
        "open_sqls": max(0, tally.sqls - closed),
        "sql_to_won_rate": _rate(tally.won, closed),
        "loss_reasons": dict(tally.loss_reasons.most_common()),
        "mql_to_customer_rate": _rate(tally.won, tally.mqls),
        "suggested_points": suggested_points(successes, tally.mqls, overall_rate),
        "current_points": current.get(key),
        "confidence": "low" if tally.mqls < LOW_CONFIDENCE_MQLS else "ok",
    }


def channel_quality(*, since: datetime, until: datetime, group_by: str = "channel") -> dict:
    """The channel-quality report (API and dashboard). Suggestions are advice only."""
    tallies = channel_tallies(since=since, until=until, group_by=group_by)
    total = GroupTally()
    for tally in tallies.values():
        total.add(tally)
    # Outcome the suggestion is based on: customers, or SQLs while nothing has closed won yet.
    outcome = "customer" if total.won else "sql"
    successes = total.won if outcome == "customer" else total.sqls
    overall_rate = successes / total.mqls if total.mqls else 0.0
    current: dict = {}
    if group_by == "form":
        current = dict(Form.objects.filter(slug__in=[k for k in tallies if k]).values_list("slug", "channel_weight"))
    groups = sorted(
        (_row(key, tally, overall_rate, outcome, current) for key, tally in tallies.items()),
        key=lambda row: (-row["mqls"], row["label"]),
    )
    return {
        "since": since,
        "until": until,
        "group_by": group_by,
        "suggestion_basis": outcome,
        "note": (
            "Suggested points compare each group's "
            + ("customers" if outcome == "customer" else "SQLs")
            + " per MQL with the average (+10 = twice the average, -10 = half). They are advice: nothing is "
            "changed until a marketer edits the rules."
        ),
        "total": _row(None, total, overall_rate, outcome, {}) | {"label": "All", "suggested_points": None},
        "groups": groups,
    }

"""Stage histories that agree with each lead's current stage (recycled leads included, in a
second cycle), with the owner, SLA and opportunity each path implies: the funnel analytics and
the SLA views read these, so they must only take legal moves.
"""

from datetime import timedelta

from leads.models import Opportunity, StageTransition

from .pgcopy import Copier
from .run import Run
from .vocabulary import LOSSES, REJECTIONS


def histories_write(run: Run, leads: list[dict], reps: list[int]) -> tuple[int, int]:
    """Stage transitions that lead to each lead's current stage, plus owner, SLA and opportunities."""
    rng = run.rng
    now = run.now
    tcopier = Copier(
        run.cursor,
        StageTransition,
        [
            "lead_id",
            "from_stage",
            "to_stage",
            "at",
            "actor_id",
            "cause",
            "cause_ref",
            "reason_code",
            "reason",
            "cycle",
            "owner_id",
            "details",
        ],
        run.batch_size,
    )
    ocopier = Copier(
        run.cursor,
        Opportunity,
        [
            "lead_id",
            "cycle",
            "buying_cycle",
            "influencer",
            "timeframe",
            "opportunity_size",
            "next_step",
            "budget",
            "status",
            "close_reason_code",
            "close_reason",
            "closed_at",
            "created_by_id",
            "created_at",
            "updated_at",
        ],
        run.batch_size,
    )
    to_sal = ("mql", "sal")
    paths = {
        "visitor": [],
        "mql": ["mql"],
        "pql": ["pql"],
        "sal": [*to_sal],
        "sql": [*to_sal, "sql"],
        "customer": [*to_sal, "sql", "customer"],
        "lost": [*to_sal, "sql", "lost"],
        "recycled": ["mql", "recycled"],
        "disqualified": ["disqualified"],
    }
    for lead in leads:
        stage = lead["stage"]
        path = list(paths[stage])
        if stage == "disqualified" and rng.random() < 0.4:
            path = ["mql", "disqualified"]
        if stage in ("mql", "sal", "sql", "customer") and rng.random() < 0.12:
            path = ["mql", "recycled", *path]  # came back in a second cycle
        times = []
        at = lead["created_at"]
        for _step in path:
            remaining = (now - at).total_seconds()
            at = at + timedelta(seconds=remaining * rng.uniform(0.05, 0.5))
            times.append(at)
        if path and path[-1] in ("mql", "pql"):
            # Open MQLs are recent: most are inside their SLA, some breached it.
            times[-1] = max(
                times[-2] if len(times) > 1 else lead["created_at"], now - timedelta(hours=rng.uniform(0.5, 60))
            )
        cycle = 1
        owner = None
        assigned_at = sla_due = first_response = None
        tcopier.add(
            (
                lead["id"],
                "",
                "visitor",
                lead["created_at"],
                None,
                "api" if lead["channel"] == "api" else "system",
                "",
                "",
                "",
                1,
                None,
                {},
            )
        )
        previous = "visitor"
        for to_stage, at in zip(path, times, strict=True):
            actor = None
            cause, cause_ref, reason_code, reason, details = "user", "", "", "", {}
            if to_stage in ("mql", "pql"):
                if previous in ("recycled", "lost"):
                    cycle += 1
                owner = rng.choice(reps)
                assigned_at = at
                sla_due = at + timedelta(hours=24)
                first_response = None
                cause, cause_ref = "rule", "threshold"
                score = rng.randrange(60, 100)
                details = {"score": score, "threshold": 60, "rules": ["Demo request", "Pricing page"]}
            elif to_stage == "sal":
                actor = owner
                first_response, sla_due = at, None
            elif to_stage == "recycled":
                actor = owner
                reason_code = rng.choice(REJECTIONS)
                reason = "Not ready to talk this quarter." if reason_code == "not_ready" else ""
                first_response = at
                owner = sla_due = None
            elif to_stage == "disqualified":
                actor = owner
                reason_code = rng.choice(("bad_data", "student", "competitor", "spam"))
                owner = sla_due = None
            elif to_stage == "sql":
                actor = owner
                details = {"opportunity_size": rng.randrange(5, 200) * 1000}
            elif to_stage == "lost":
                actor = owner
                reason_code = rng.choice(LOSSES)
            elif to_stage == "customer":
                actor = owner
            tcopier.add(
                (
                    lead["id"],
                    previous,
                    to_stage,
                    at,
                    actor,
                    cause,
                    cause_ref,
                    reason_code,
                    reason,
                    cycle,
                    owner,
                    details,
                )
            )
            if to_stage == "sql":
                final = path[-1]
                closed = times[-1] if final in ("customer", "lost") else None
                status = {"customer": "won", "lost": "lost"}.get(final, "open")
                size = details["opportunity_size"]
                ocopier.add(
                    (
                        lead["id"],
                        cycle,
                        rng.choice(("Quarterly budget review", "Annual planning", "Ad hoc")),
                        rng.choice(("VP Marketing", "CFO", "Head of Sales")),
                        rng.choice(("this quarter", "next quarter", "within 6 months")),
                        size,
                        "Technical call with the team",
                        size if rng.random() < 0.5 else None,
                        status,
                        {"won": "", "lost": rng.choice(LOSSES)}.get(status, ""),
                        "",
                        closed,
                        owner,
                        at,
                        at,
                    )
                )
            if to_stage == "lost":
                owner = None
            previous = to_stage
        lead["stage_changed_at"] = times[-1] if times else lead["created_at"]
        lead["cycle"] = cycle
        lead["owner_id"] = owner
        lead["assigned_at"] = assigned_at if owner else None
        lead["sla_due_at"] = sla_due if stage in ("mql", "pql") else None
        lead["sla_breached_at"] = sla_due if lead["sla_due_at"] and sla_due < now else None
        lead["first_response_at"] = first_response if owner else None
    tcopier.flush()
    ocopier.flush()
    return tcopier.count, ocopier.count

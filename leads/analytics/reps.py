"""Reps against the response SLA: how fast each rep answered the leads assigned to them, how many
breached, and how many the SLA took away from them — from the leads' current assignment and the
ownership history."""

from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q

from leadfunnel.models import LeadAssignment

from ..models import Lead
from ..selectors import current_sla_hours
from .common import _labels, _scoped
from .durations import _durations


def sla_report(*, since: datetime, until: datetime, sla_hours: float | None = None, scope=None) -> dict:
    """Reps' response time against the SLA for leads assigned in ``[since, until)``.

    Uses the leads' current assignment (``assigned_at``, ``first_response_at``,
    ``sla_breached_at``) plus the ownership history for SLA reassignments. Three queries.

    Returns ``{"since", "until", "sla_hours", "reps": [R], "totals": R}`` where R is::

        {"owner_id", "label", "assigned", "responded", "waiting",
         "within_sla": responded in time and never marked breached,
         "breached": marked breached or answered later than the SLA,
         "reassigned_away": leads taken from this rep by the SLA in the period,
         "median_response_hours", "p90_response_hours"}
    """
    if sla_hours is None:
        sla_hours = current_sla_hours()
    window = timedelta(hours=sla_hours)
    response = ExpressionWrapper(F("first_response_at") - F("assigned_at"), output_field=DurationField())
    late = Q(sla_breached_at__isnull=False) | Q(first_response_at__isnull=False, response__gt=window)
    leads = _scoped(Lead.objects.all(), scope, "pk")
    assigned = leads.filter(assigned_at__gte=since, assigned_at__lt=until, owner__isnull=False).annotate(
        response=response
    )
    counts = {
        row["owner_id"]: row
        for row in assigned.values("owner_id")
        .annotate(
            assigned=Count("id"),
            responded=Count("id", filter=Q(first_response_at__isnull=False)),
            breached=Count("id", filter=late),
            responded_late=Count("id", filter=Q(first_response_at__isnull=False) & late),
        )
        .order_by()
    }
    times = _durations(
        leads.filter(
            assigned_at__gte=since, assigned_at__lt=until, owner__isnull=False, first_response_at__isnull=False
        )
        .values("owner_id", "assigned_at", "first_response_at")
        .order_by(),
        ["owner_id"],
        {"response": ("assigned_at", "first_response_at")},
        unit=3600,
    )
    away = dict(
        _scoped(
            LeadAssignment.objects.filter(cause=LeadAssignment.Cause.SLA, at__gte=since, at__lt=until), scope, "lead_id"
        )
        .exclude(from_owner__isnull=True)
        .values("from_owner_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("from_owner_id", "n")
    )
    owner_ids = sorted(set(counts) | set(away))
    labels = _labels("owner", owner_ids)
    reps = []
    for owner_id in owner_ids:
        row = counts.get(owner_id, {"assigned": 0, "responded": 0, "breached": 0, "responded_late": 0})
        stats = times.get((owner_id,), {}).get("response", {})
        reps.append(
            {
                "owner_id": owner_id,
                "label": labels[owner_id],
                "assigned": row["assigned"],
                "responded": row["responded"],
                "waiting": row["assigned"] - row["responded"],
                "within_sla": row["responded"] - row["responded_late"],
                "breached": row["breached"],
                "reassigned_away": away.get(owner_id, 0),
                "median_response_hours": stats.get("median"),
                "p90_response_hours": stats.get("p90"),
            }
        )
    totals = {
        "owner_id": None,
        "label": "All reps",
        **{
            name: sum(r[name] for r in reps)
            for name in ("assigned", "responded", "waiting", "within_sla", "breached", "reassigned_away")
        },
        "median_response_hours": None,
        "p90_response_hours": None,
    }
    return {"since": since, "until": until, "sla_hours": sla_hours, "reps": reps, "totals": totals}

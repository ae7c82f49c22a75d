"""Expansions counted apart: customers who signalled they want more (service qualified leads)
became expansion opportunities, never a second entry into "customer" in the stage history."""

from datetime import datetime

from django.db.models import Count, Q

from ..models import Opportunity


def expansion_counts(*, since: datetime, until: datetime) -> dict:
    """Expansion opportunities opened in ``[since, until)``: how many, and of those how many were
    won, lost or are still open. One aggregate query."""
    rows = Opportunity.objects.filter(kind=Opportunity.Kind.EXPANSION, created_at__gte=since, created_at__lt=until)
    counts = rows.aggregate(
        opened=Count("id"),
        won=Count("id", filter=Q(status=Opportunity.Status.WON)),
        lost=Count("id", filter=Q(status=Opportunity.Status.LOST)),
        open=Count("id", filter=Q(status=Opportunity.Status.OPEN)),
    )
    counts["win_rate"] = (
        round(counts["won"] / (counts["won"] + counts["lost"]), 4) if counts["won"] + counts["lost"] else None
    )
    return counts

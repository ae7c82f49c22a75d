"""Decay: keeping the stored scores of leads with decaying engagement close to the truth."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..engine import LeadScorer
from ..models import LeadRuleTotal
from ..selectors import ruleset_get
from .ledger import load_totals, write_lead_scores

DECAY_BATCH = 2000


def scores_refresh_decayed(*, batch_size: int = DECAY_BATCH, now: datetime | None = None) -> int:
    """Refresh the stored scores of leads holding decaying engagement (periodic, set-based batches).

    Reads are lazy anyway (the score API decays on the fly); this keeps the
    stored columns (lists, filters, the dashboard) close to the truth. Each
    batch: the leads' totals (one query) and one UPDATE; no promotion (decay only
    lowers positive engagement).
    """
    now = now or timezone.now()
    ruleset = ruleset_get()
    decaying = [rule_id for rule_id, spec in ruleset.by_id.items() if spec.half_life_days]
    if not decaying:
        return 0
    refreshed = 0
    last_id = 0
    while True:
        lead_ids = list(
            LeadRuleTotal.objects.filter(rule_id__in=decaying, lead_id__gt=last_id)
            .exclude(value=0)
            .order_by("lead_id")
            .values_list("lead_id", flat=True)
            .distinct()[:batch_size]
        )
        if not lead_ids:
            return refreshed
        last_id = lead_ids[-1]
        with transaction.atomic():
            totals = load_totals(lead_ids)
            rows = []
            for lead_id in lead_ids:
                scorer = LeadScorer(lead_id=lead_id, ruleset=ruleset, totals=totals.get(lead_id, {}), now=now)
                rows.append((lead_id, scorer.result()))
            write_lead_scores(rows, now=now)
        refreshed += len(rows)

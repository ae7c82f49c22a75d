"""Scoring's writes, by subject:

- :mod:`.incremental` — live scoring of new interactions and profile changes (any number of
  leads); answers the leads that now qualify, for the funnel to apply;
- :mod:`.ledger` — the contributions ledger, the running totals and the leads' score columns;
- :mod:`.pending` — the deferred scoring queue (events scored after commit, in batches);
- :mod:`.recompute` — the full recompute, and the qualifications it leaves;
- :mod:`.configuration` — rules and settings edited by marketers;
- :mod:`.decay` — refreshing decaying scores.
"""

from ..install import scoring_install_defaults
from .configuration import (
    RULE_FIELDS,
    SETTINGS_FIELDS,
    rule_create,
    rule_delete,
    rule_update,
    rule_validate,
    scoring_settings_update,
)
from .decay import DECAY_BATCH, scores_refresh_decayed
from .incremental import (
    ScoreOutcome,
    score_interactions,
    score_interactions_bulk,
    score_leads,
    score_profile_change,
)
from .pending import PendingBatch, pending_add, pending_claim, pending_count
from .recompute import (
    RECOMPUTE_BATCH,
    QualifiedBatch,
    recompute_job_promoted,
    recompute_job_run,
    recompute_jobs_stale,
    recompute_qualifications,
    recompute_request,
    recompute_workers_default,
    scores_recompute_lead,
    scoring_recompute_all,
)

__all__ = [
    "DECAY_BATCH",
    "RECOMPUTE_BATCH",
    "RULE_FIELDS",
    "SETTINGS_FIELDS",
    "PendingBatch",
    "QualifiedBatch",
    "ScoreOutcome",
    "pending_add",
    "pending_claim",
    "pending_count",
    "recompute_job_promoted",
    "recompute_job_run",
    "recompute_jobs_stale",
    "recompute_qualifications",
    "recompute_request",
    "recompute_workers_default",
    "rule_create",
    "scores_recompute_lead",
    "rule_delete",
    "rule_update",
    "rule_validate",
    "score_interactions",
    "score_interactions_bulk",
    "score_leads",
    "score_profile_change",
    "scores_refresh_decayed",
    "scoring_install_defaults",
    "scoring_recompute_all",
    "scoring_settings_update",
]

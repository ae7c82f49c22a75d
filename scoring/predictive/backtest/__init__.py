"""Back-testing: what a candidate rule set and settings would have done on the recorded history.

A candidate (:mod:`.candidates`: a whole rule set or a diff against the current rules, plus
setting overrides) and the current rules are replayed side by side over the recorded
interactions (:mod:`.replay`, reading :mod:`.streams`); the leads each side would have made
MQLs in ``[since, until)`` are then compared with what really happened to them
(:mod:`.compare`). A back-test is a job (:mod:`.jobs`): small ones answer in the request,
bigger ones run on the ``bulk`` queue; a finished one can be applied through the scoring
services.

Limits (documented in the README): the profile is today's profile (profile
history is not recorded); only the first qualification is simulated (a
re-qualification after a rep's rejection depends on the rep); PQL rules are
not part of the replay. Memory stays flat: one lead's state at a time.

Import from here: ``from scoring.predictive.backtest import backtest_create``.
"""

from .candidates import build_ruleset, candidate_rules, candidate_ruleset, current_ruleset
from .compare import backtest_compare
from .jobs import (
    backtest_apply,
    backtest_create,
    backtest_interactions_in_scope,
    backtest_jobs_to_resume,
    backtest_run,
)
from .replay import SideQualifications, first_qualification, first_qualifications, replay

__all__ = [
    "SideQualifications",
    "backtest_apply",
    "backtest_compare",
    "backtest_create",
    "backtest_interactions_in_scope",
    "backtest_jobs_to_resume",
    "backtest_run",
    "build_ruleset",
    "candidate_rules",
    "candidate_ruleset",
    "current_ruleset",
    "first_qualification",
    "first_qualifications",
    "replay",
]

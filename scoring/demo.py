"""Demo data for scoring: the default B2B model (seed_demo calls this first)."""

from .models import ScoringRule
from .selectors import scoring_settings_get
from .services import scoring_install_defaults


def seed_demo() -> str:
    scoring_settings_get()  # creates the settings row and the default rules on a fresh database
    added = scoring_install_defaults()  # and any default rule missing from an older install
    total = ScoringRule.objects.count()
    return f"{total} scoring rules ({added} added now); MQL threshold {scoring_settings_get().mql_threshold}"

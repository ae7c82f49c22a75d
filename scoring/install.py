"""Installing the default B2B rule set (``scoring.defaults``) on a fresh database."""

from django.db.models import F
from django.utils import timezone

from .defaults import DEFAULT_RULES
from .models import ScoringRule, ScoringSettings


def scoring_install_defaults(*, settings_row: ScoringSettings | None = None) -> int:
    """Install the default B2B rule set (rules whose key is missing). Returns how many were added."""
    existing = set(ScoringRule.objects.filter(builtin_key__isnull=False).values_list("builtin_key", flat=True))
    new = []
    for spec in DEFAULT_RULES:
        if spec["key"] in existing:
            continue
        data = {k: v for k, v in spec.items() if k != "key"}
        new.append(ScoringRule(builtin_key=spec["key"], **data))
    ScoringRule.objects.bulk_create(new)
    ScoringSettings.objects.filter(pk=ScoringSettings.SINGLETON_PK).update(
        defaults_installed_at=timezone.now(), version=F("version") + (1 if new else 0), updated_at=timezone.now()
    )
    if settings_row is not None:
        settings_row.refresh_from_db()
    return len(new)

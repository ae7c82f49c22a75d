"""Rules and settings, edited by marketers: validated, audited, versioned; a change that alters
scores queues a full recompute."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import ValidationFailed
from leads.models import InteractionType

from ..models import LeadRuleTotal, ScoreContribution, ScoringRule, ScoringSettings
from ..rules import rule_errors
from ..selectors import scoring_settings_get
from .recompute import recompute_request

# --- rules and settings (marketers) -------------------------------------------------

RULE_FIELDS = (
    "name",
    "description",
    "dimension",
    "source",
    "field",
    "operator",
    "value",
    "interaction_type",
    "property",
    "points",
    "use_channel_weight",
    "max_points",
    "half_life_days",
    "blocks_mql",
    "active",
)


def rule_validate(data: dict) -> None:
    errors = rule_errors(data, interaction_types=InteractionType.values)
    if errors:
        first = next(iter(errors.items()))
        raise ValidationFailed(f"{first[0]}: {first[1]}", fields=errors)


def _bump_version(*, actor=None) -> None:
    ScoringSettings.objects.filter(pk=ScoringSettings.SINGLETON_PK).update(
        version=F("version") + 1,
        updated_at=timezone.now(),
        updated_by=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
    )


def _rule_snapshot(rule: ScoringRule) -> dict:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


@transaction.atomic
def rule_create(*, actor=None, recompute: bool = True, **data) -> ScoringRule:
    scoring_settings_get()
    full = {name: data.get(name) for name in RULE_FIELDS if name in data}
    full.setdefault("active", True)
    rule_validate(full)
    rule = ScoringRule(
        **{k: v for k, v in full.items() if v is not None or k in ("value", "max_points", "half_life_days")}
    )
    rule.created_by = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    rule.save()
    audit_record(actor=actor, action="scoring.rule_created", obj=rule, changes=_jsonable(_rule_snapshot(rule)))
    _bump_version(actor=actor)
    if recompute:
        recompute_request(actor=actor, reason=f"rule {rule.pk} created")
    return rule


@transaction.atomic
def rule_update(*, rule: ScoringRule, actor=None, recompute: bool = True, **changes) -> ScoringRule:
    locked = ScoringRule.objects.select_for_update().get(pk=rule.pk)
    before = _rule_snapshot(locked)
    merged = {**before, **{k: v for k, v in changes.items() if k in RULE_FIELDS}}
    rule_validate(merged)
    diff = {k: [before[k], merged[k]] for k in RULE_FIELDS if before[k] != merged[k]}
    if not diff:
        return locked
    for key, value in merged.items():
        setattr(locked, key, value)
    locked.save()
    audit_record(actor=actor, action="scoring.rule_updated", obj=locked, changes=_jsonable(diff))
    _bump_version(actor=actor)
    if recompute:
        recompute_request(actor=actor, reason=f"rule {locked.pk} changed")
    return locked


@transaction.atomic
def rule_delete(*, rule: ScoringRule, actor=None, recompute: bool = True) -> None:
    rule_id = rule.pk
    snapshot = _jsonable(_rule_snapshot(rule))
    # Set-based: one DELETE each, however many leads the rule scored.
    ScoreContribution.objects.filter(rule_id=rule_id).delete()
    LeadRuleTotal.objects.filter(rule_id=rule_id).delete()
    ScoringRule.objects.filter(pk=rule_id).delete()
    audit_record(
        actor=actor,
        action="scoring.rule_deleted",
        object_type="scoring.scoringrule",
        object_id=str(rule_id),
        changes=snapshot,
    )
    _bump_version(actor=actor)
    if recompute:
        recompute_request(actor=actor, reason=f"rule {rule_id} deleted")


SETTINGS_FIELDS = (
    "mql_threshold",
    "sales_ready_threshold",
    "required_profile_fields",
    "sla_hours",
    "pql_rule",
    "free_mail_domains",
    "disposable_domains",
    "role_account_prefixes",
    "competitor_domains",
    "fit_weight",
    "engagement_weight",
)
# Settings whose change alters scores (the others take effect without a recompute).
_RESCORING_SETTINGS = {
    "free_mail_domains",
    "disposable_domains",
    "role_account_prefixes",
    "competitor_domains",
    "fit_weight",
    "engagement_weight",
    "mql_threshold",
    "required_profile_fields",
}


@transaction.atomic
def scoring_settings_update(*, actor=None, recompute: bool = True, **changes) -> ScoringSettings:
    scoring_settings_get()
    row = ScoringSettings.objects.select_for_update().get(pk=ScoringSettings.SINGLETON_PK)
    diff = {}
    for key, value in changes.items():
        if key not in SETTINGS_FIELDS:
            continue
        if getattr(row, key) != value:
            diff[key] = [getattr(row, key), value]
            setattr(row, key, value)
    if not diff:
        return row
    if row.fit_weight + row.engagement_weight <= 0:
        raise ValidationFailed(
            "fit_weight and engagement_weight cannot both be 0.", fields={"fit_weight": "At least one weight > 0."}
        )
    if row.sales_ready_threshold is not None and row.sales_ready_threshold < row.mql_threshold:
        raise ValidationFailed(
            "The sales-ready threshold cannot be below the MQL threshold.",
            fields={"sales_ready_threshold": "Must be at least the MQL threshold."},
        )
    row.version = F("version") + 1
    row.updated_by = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    row.save()
    row.refresh_from_db()
    audit_record(actor=actor, action="scoring.settings_updated", obj=row, changes=_jsonable(diff))
    if recompute and set(diff) & _RESCORING_SETTINGS:
        recompute_request(actor=actor, reason="settings changed: " + ", ".join(sorted(diff)))
    return row


def _jsonable(data):
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))

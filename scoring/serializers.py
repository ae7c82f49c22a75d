"""Scoring API serializers: plain input serializers (shape only; the rules' meaning is
checked by ``scoring.rules.rule_errors`` in the service) and lean outputs."""

import re

from rest_framework import serializers

from leads.models import InteractionType

from .models import Dimension, RecomputeJob, RuleSource, ScoringRule, ScoringSettings
from .rules import OPERATORS, field_type
from .services import RULE_FIELDS


class RuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    dimension = serializers.ChoiceField(choices=Dimension.choices)
    source = serializers.ChoiceField(choices=RuleSource.choices)
    field = serializers.CharField(required=False, allow_blank=True, max_length=100)
    operator = serializers.CharField(required=False, allow_blank=True, max_length=20)
    value = serializers.JSONField(required=False, allow_null=True)
    interaction_type = serializers.CharField(required=False, allow_blank=True, max_length=40)
    property = serializers.CharField(required=False, allow_blank=True, max_length=100)
    points = serializers.FloatField()
    use_channel_weight = serializers.BooleanField(required=False)
    max_points = serializers.FloatField(required=False, allow_null=True)
    half_life_days = serializers.FloatField(required=False, allow_null=True)
    blocks_mql = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)

    def validate_operator(self, value: str) -> str:
        if value and value not in OPERATORS:
            raise serializers.ValidationError(f"Unknown operator '{value}'; use one of: {', '.join(OPERATORS)}.")
        return value


class RuleOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoringRule
        fields = ["id", *RULE_FIELDS, "builtin_key", "created_at", "updated_at"]
        read_only_fields = fields


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _domain_list(values: list[str]) -> list[str]:
    cleaned, bad = [], []
    for raw in values:
        domain = raw.strip().lower().lstrip("@")
        if not _DOMAIN.match(domain):
            bad.append(raw)
        elif domain not in cleaned:
            cleaned.append(domain)
    if bad:
        raise serializers.ValidationError(f"Not a domain name: {', '.join(bad[:5])}.")
    return cleaned


class PqlRuleSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    trial_type = serializers.ChoiceField(choices=InteractionType.choices, default="trial_started")
    usage_type = serializers.ChoiceField(choices=InteractionType.choices, default="product_usage")
    min_usage = serializers.IntegerField(min_value=1, max_value=10000, default=5)
    within_days = serializers.FloatField(min_value=0.01, max_value=3650, default=14)


class SettingsInputSerializer(serializers.Serializer):
    mql_threshold = serializers.IntegerField(min_value=1, max_value=100, required=False)
    sales_ready_threshold = serializers.IntegerField(min_value=1, max_value=100, required=False, allow_null=True)
    required_profile_fields = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=30
    )
    sla_hours = serializers.IntegerField(min_value=1, max_value=24 * 60, required=False)
    pql_rule = PqlRuleSerializer(required=False)
    free_mail_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=10000
    )
    disposable_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=10000
    )
    role_account_prefixes = serializers.ListField(
        child=serializers.RegexField(r"^[A-Za-z0-9._+-]{1,64}$", max_length=64), required=False, max_length=500
    )
    competitor_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=10000
    )
    fit_weight = serializers.IntegerField(min_value=0, max_value=100, required=False)
    engagement_weight = serializers.IntegerField(min_value=0, max_value=100, required=False)

    def validate_required_profile_fields(self, value: list[str]) -> list[str]:
        unknown = [name for name in value if field_type(name) is None]
        if unknown:
            raise serializers.ValidationError(f"Unknown profile field(s): {', '.join(unknown)}.")
        return list(dict.fromkeys(value))

    def validate_free_mail_domains(self, value):
        return _domain_list(value)

    def validate_disposable_domains(self, value):
        return _domain_list(value)

    def validate_competitor_domains(self, value):
        return _domain_list(value)

    def validate_role_account_prefixes(self, value):
        return list(dict.fromkeys(v.strip().lower() for v in value))


class SettingsOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoringSettings
        fields = [
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
            "version",
            "updated_at",
        ]
        read_only_fields = fields


class RecomputeJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = RecomputeJob
        fields = [
            "id",
            "status",
            "done",
            "total",
            "promoted",
            "reason",
            "settings_version",
            "created_at",
            "started_at",
            "finished_at",
            "error",
        ]
        read_only_fields = fields


class ContributionSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    rule_name = serializers.CharField()
    dimension = serializers.CharField()
    points = serializers.FloatField(help_text="Points awarded when it happened (after the rule's cap).")
    current_points = serializers.FloatField(help_text="What the points are worth now, after decay.")
    reason = serializers.CharField()
    at = serializers.DateTimeField()
    interaction = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_blank=True)
    source = serializers.CharField()
    active = serializers.BooleanField()


class RuleTotalSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    name = serializers.CharField()
    dimension = serializers.CharField()
    matches = serializers.IntegerField()
    points = serializers.FloatField()
    current_points = serializers.FloatField()
    capped = serializers.BooleanField()
    max_points = serializers.FloatField(allow_null=True)
    half_life_days = serializers.FloatField(allow_null=True)
    blocks_mql = serializers.BooleanField()


class LeadScoreSerializer(serializers.Serializer):
    lead = serializers.IntegerField()
    score = serializers.IntegerField()
    fit_score = serializers.IntegerField()
    engagement_score = serializers.IntegerField()
    fit_points = serializers.FloatField()
    engagement_points = serializers.FloatField()
    mql_blocked = serializers.BooleanField()
    mql_threshold = serializers.IntegerField()
    sales_ready = serializers.BooleanField(help_text="The score reached the sales-ready threshold (if one is set).")
    predicted_probability = serializers.FloatField(allow_null=True)
    rules = RuleTotalSerializer(many=True)
    contributions = ContributionSerializer(many=True)

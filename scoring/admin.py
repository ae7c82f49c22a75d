from django.contrib import admin

from .models import LeadRuleTotal, RecomputeJob, ScoreContribution, ScoringRule, ScoringSettings


@admin.register(ScoringRule)
class ScoringRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "dimension", "source", "interaction_type", "field", "operator", "points", "max_points")
    list_filter = ("dimension", "source", "active", "blocks_mql")
    search_fields = ("name", "field", "interaction_type", "property")


@admin.register(ScoringSettings)
class ScoringSettingsAdmin(admin.ModelAdmin):
    list_display = ("mql_threshold", "sla_hours", "fit_weight", "engagement_weight", "version", "updated_at")


@admin.register(ScoreContribution)
class ScoreContributionAdmin(admin.ModelAdmin):
    list_display = ("lead", "rule", "dimension", "points", "at")
    list_select_related = ("lead", "rule")
    raw_id_fields = ("lead", "interaction")
    list_filter = ("dimension", "source")


@admin.register(LeadRuleTotal)
class LeadRuleTotalAdmin(admin.ModelAdmin):
    list_display = ("lead", "rule", "matches", "points", "value", "value_at")
    list_select_related = ("lead", "rule")
    raw_id_fields = ("lead",)


@admin.register(RecomputeJob)
class RecomputeJobAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "done", "total", "promoted", "created_at", "finished_at")
    list_filter = ("status",)

"""Django admin for leads: read-mostly views for support; stage changes go through the services."""

from django.contrib import admin

from .models import (
    Company,
    ConsentRequest,
    Form,
    FormSubmission,
    ImportJob,
    Interaction,
    Lead,
    LeadAlias,
    Opportunity,
    SalesRepProfile,
    StageTransition,
)


class StageTransitionInline(admin.TabularInline):
    model = StageTransition
    fk_name = "lead"
    extra = 0
    can_delete = False
    ordering = ("-at",)
    fields = ("at", "from_stage", "to_stage", "cause", "actor", "reason_code", "reason", "cycle", "owner")
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "owner")


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("email", "first_name", "last_name", "company", "stage", "score", "owner", "source", "created_at")
    list_filter = ("stage", "channel", "source")
    list_select_related = ("company", "owner")
    search_fields = ("email", "first_name", "last_name", "company_name")
    raw_id_fields = ("company", "owner", "first_form")
    # The funnel position and the scores change only through the services (history, outbox, scoring).
    readonly_fields = (
        "stage",
        "stage_changed_at",
        "cycle",
        "owner",
        "assigned_at",
        "sla_due_at",
        "sla_breached_at",
        "sla_escalated_at",
        "first_response_at",
        "score",
        "fit_score",
        "engagement_score",
        "fit_points",
        "engagement_points",
        "engagement_points_at",
        "mql_blocked",
        "score_updated_at",
        "predicted_probability",
        "last_activity_at",
        "created_at",
        "updated_at",
    )
    inlines = [StageTransitionInline]
    show_full_result_count = False


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "size_band", "industry", "country")
    search_fields = ("name", "domain")
    show_full_result_count = False


@admin.register(StageTransition)
class StageTransitionAdmin(admin.ModelAdmin):
    list_display = ("lead", "from_stage", "to_stage", "at", "cause", "actor", "reason_code", "cycle")
    list_filter = ("to_stage", "cause")
    list_select_related = ("lead", "actor")
    raw_id_fields = ("lead", "actor", "owner")
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("lead", "type", "occurred_at", "source")
    list_filter = ("type",)
    list_select_related = ("lead",)
    raw_id_fields = ("lead",)
    show_full_result_count = False

    # Append-only.
    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Form)
class FormAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "channel", "channel_weight", "active")
    list_filter = ("active", "channel", "kind")
    search_fields = ("name", "slug")
    raw_id_fields = ("created_by",)


@admin.register(FormSubmission)
class FormSubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "form", "lead", "received_at", "ip", "is_spam")
    list_filter = ("is_spam", "form")
    list_select_related = ("form", "lead")
    raw_id_fields = ("form", "lead")
    show_full_result_count = False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ("lead", "kind", "status", "opportunity_size", "timeframe", "cycle", "closed_at")
    list_filter = ("kind", "status")
    list_select_related = ("lead",)
    raw_id_fields = ("lead", "created_by")


@admin.register(LeadAlias)
class LeadAliasAdmin(admin.ModelAdmin):
    """Read-only: aliases are made by merging two leads (``leads.services.lead_merge``)."""

    list_display = ("email", "lead", "merged_lead_id", "created_at", "created_by")
    list_select_related = ("lead", "created_by")
    search_fields = ("email",)
    readonly_fields = ("email", "lead", "merged_lead_id", "created_at", "created_by")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SalesRepProfile)
class SalesRepProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "is_away", "capacity", "manager", "last_assigned_at")
    list_select_related = ("user", "manager")
    raw_id_fields = ("user", "manager")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "status", "total_rows", "created_count", "error_count", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("created_by",)


@admin.register(ConsentRequest)
class ConsentRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "form", "created_at", "sent_at", "confirmed_at", "confirmed_ip", "attempts")
    list_select_related = ("lead", "form")
    raw_id_fields = ("lead", "form")

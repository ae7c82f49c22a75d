from django.contrib import admin

from .models import EmailTemplate, Enrollment, Message, ProviderEvent, Sequence, Step, StepExecution


class StepInline(admin.TabularInline):
    model = Step
    extra = 0


@admin.register(Sequence)
class SequenceAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "reenroll", "stop_on_handoff", "updated_at")
    list_filter = ("active",)
    search_fields = ("name",)
    inlines = [StepInline]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "sequence", "status", "current_step", "next_due_at", "exit_reason")
    list_filter = ("status", "exit_reason", "sequence")
    list_select_related = ("lead", "sequence")
    raw_id_fields = ("lead", "enrolled_by")
    search_fields = ("lead__email",)


@admin.register(StepExecution)
class StepExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "enrollment", "position", "run", "kind", "state", "attempts", "created_at")
    list_filter = ("state", "kind")
    raw_id_fields = ("enrollment", "step")
    list_select_related = ("enrollment",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "to", "subject", "variant", "sent_at", "opened_at", "clicked_at")
    list_filter = ("channel", "purpose", "variant")
    raw_id_fields = ("lead", "execution")
    search_fields = ("to", "token")


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    list_display = ("id", "esp", "kind", "event_id", "message", "lead", "occurred_at", "received_at")
    list_filter = ("esp", "kind")
    raw_id_fields = ("message", "lead")
    list_select_related = ("message", "lead")


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "subject", "updated_at")
    search_fields = ("name", "subject")
    raw_id_fields = ("created_by",)

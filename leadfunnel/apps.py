from django.apps import AppConfig


class LeadFunnelConfig(AppConfig):
    name = "leadfunnel"
    verbose_name = "LeadFunnel core"

    def ready(self) -> None:
        # Register the outbox handlers of outgoing webhooks and the plumbing's Celery tasks
        # in every process (web, worker, beat, tests), not only where Celery autodiscovers
        # tasks: the outbox, notifications and webhooks queue those tasks by name, and with
        # CELERY_TASK_ALWAYS_EAGER a kick runs the registered task in-process.
        from django.db import models
        from rest_framework.serializers import ModelSerializer

        from . import tasks, webhooks  # noqa: F401
        from .validation import DbDateTimeField

        # Every ModelSerializer's date-times: offsets and years PostgreSQL can store (a 400, not a 500).
        ModelSerializer.serializer_field_mapping[models.DateTimeField] = DbDateTimeField

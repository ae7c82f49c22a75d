from django.apps import AppConfig


class LeadFunnelConfig(AppConfig):
    name = "leadfunnel"
    verbose_name = "LeadFunnel core"

    def ready(self) -> None:
        # Register the outbox handlers of notifications and outgoing webhooks in every
        # process (web, worker, beat, tests), not only where Celery autodiscovers tasks.
        from . import notifications, webhooks  # noqa: F401

from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"

    def ready(self) -> None:
        from anymail.signals import tracking

        # Registers the outbox handlers and nurturing's part of merging two leads.
        from . import handlers, merge  # noqa: F401
        from .provider_webhooks import on_tracking_event

        tracking.connect(on_tracking_event, dispatch_uid="leadfunnel.nurturing.tracking")

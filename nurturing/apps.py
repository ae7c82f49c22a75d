from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"

    def ready(self) -> None:
        from anymail.signals import tracking

        from . import handlers  # noqa: F401 - registers the outbox handlers
        from .provider_webhooks import on_tracking_event

        tracking.connect(on_tracking_event, dispatch_uid="leadfunnel.nurturing.tracking")

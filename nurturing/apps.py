from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"

    def ready(self) -> None:
        # Registers the outbox handlers and nurturing's part of merging two leads.
        from . import handlers, merge  # noqa: F401

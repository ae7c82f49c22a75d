from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"

    def ready(self) -> None:
        from . import handlers  # noqa: F401 - registers the outbox handlers

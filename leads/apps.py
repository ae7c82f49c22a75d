from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from . import handlers  # noqa: F401 - registers the outbox handlers

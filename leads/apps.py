from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        # Register the leads app's outbox handlers in every process (web, worker, beat, tests).
        from . import handlers, tasks  # noqa: F401

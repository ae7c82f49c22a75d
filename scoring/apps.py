from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        # Registration in every process (web, worker, beat, tests), not only where Celery
        # autodiscovers tasks: the recompute's outbox handler lives with its task, and the
        # predictive and back-test tasks live in the predictive package.
        from . import tasks  # noqa: F401
        from .predictive import tasks as predictive_tasks  # noqa: F401

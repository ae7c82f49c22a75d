from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        # Celery autodiscovery imports only scoring.tasks; the predictive and back-test
        # tasks live in scoring/predictive/tasks.py and register here, once the apps are loaded.
        from .predictive import tasks  # noqa: F401

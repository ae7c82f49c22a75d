from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        # Celery autodiscovery imports only scoring.tasks; the predictive and back-test
        # tasks live in their own module and register here.
        from . import predictive_tasks  # noqa: F401

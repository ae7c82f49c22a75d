"""The Celery app: JSON only, late acks, tasks autodiscovered from every app.

Periodic jobs: each app may define ``BEAT_SCHEDULE`` in its ``tasks.py``; they
are merged here so beat (which runs once) has the whole schedule.
"""

import importlib
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadfunnel.settings")

app = Celery("leadfunnel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

BEAT_APPS = ("leadfunnel", "leads", "scoring", "nurturing")


@app.on_after_finalize.connect
def _collect_beat_schedule(sender: Celery, **kwargs: object) -> None:
    schedule = dict(sender.conf.beat_schedule or {})
    for app_label in BEAT_APPS:
        try:
            module = importlib.import_module(f"{app_label}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app_label}.tasks":
                raise
            continue
        schedule.update(getattr(module, "BEAT_SCHEDULE", {}))
    sender.conf.beat_schedule = schedule

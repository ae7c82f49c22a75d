"""The Celery app: JSON only, late acks, tasks autodiscovered from every app.

Its configuration is the ``CELERY_*`` Django settings, including the whole beat
schedule (``CELERY_BEAT_SCHEDULE`` in leadfunnel/settings.py).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadfunnel.settings")

app = Celery("leadfunnel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

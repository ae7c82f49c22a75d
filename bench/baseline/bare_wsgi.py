"""WSGI entry point of the bare baseline server (bench.baseline_bare_settings)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline_bare_settings")
application = get_wsgi_application()

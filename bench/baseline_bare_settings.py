"""The bare baseline of the intake benchmark: Django with no middleware, no apps, one URL.

``POST /bench/baseline/submit/`` (bench/baseline/views.py) parses the form payload and does one
``INSERT … ON CONFLICT (email) DO UPDATE``. Served by its own gunicorn (bench/baseline/bare_wsgi.py)
with the same worker count and class as the app's. The database settings are LeadFunnel's own
(imported, so they cannot drift apart); nothing else of LeadFunnel runs in a request.
"""

from leadfunnel.settings import ALLOWED_HOSTS, DATABASES, SECRET_KEY  # noqa: F401

DEBUG = False
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.baseline.bare_urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

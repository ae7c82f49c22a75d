"""LeadFunnel's settings plus the benchmark baseline view (bench/baseline/), for gunicorn in benchmarks.

The app is served unchanged; one extra URL, ``POST /bench/baseline/submit/``, does a single
upsert of the same form payload into a plain table (created by ``bench.baseline.ensure_table``).
"""

from leadfunnel.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline.urls"

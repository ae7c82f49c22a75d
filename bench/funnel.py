"""Funnel analytics without the cache: what one uncached /api/v1/funnel/ answer costs.

    .venv/bin/python bench/funnel.py [--leads 100000] [--interactions 1000000] [--repeat 15] [--days 30]

Against a fresh copy of the seeded database (stage histories over every stage, second
cycles included), with ``FUNNEL_CACHE_SECONDS=0`` so every request computes: the period
view (ungrouped, by source, by owner) and the cohort view (ungrouped, by channel) over
the last ``--days`` days, through Django's test client in this process (query counts are
pinned in tests/ops/test_analytics.py). Target (design): p95 < 200 ms. The API normally serves
repeated questions from a short cache (``FUNNEL_CACHE_SECONDS``); ``bench/pages.py``
measures that path.
"""

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drop_db, percentile, record, seeded_db, setup_django

DB = "lf_bench_funnel"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    setup_django(DB, FUNNEL_CACHE_SECONDS="0", DEBUG="false")
    seeded_db(DB, args.leads, args.interactions)
    try:
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.utils import timezone

        admin, _ = get_user_model().objects.get_or_create(username="bench-funnel", defaults={"is_superuser": True})
        client = Client()
        client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
        until = timezone.now()
        since = until - timedelta(days=args.days)
        base = {"since": since.isoformat(), "until": until.isoformat()}
        cases = [
            ("period", {}),
            ("period by source", {"group_by": "source"}),
            ("period by owner", {"group_by": "owner"}),
            ("cohort", {"view": "cohort"}),
            ("cohort by channel", {"view": "cohort", "group_by": "channel"}),
        ]
        figures = []
        for label, params in cases:
            query = {**base, **params}
            assert client.get("/api/v1/funnel/", query).status_code == 200
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get("/api/v1/funnel/", query)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            p50, p95 = percentile(times, 50), percentile(times, 95)
            print(f"{label:20s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(times):7.1f} ms")
            figures.append(f"{label} p95 {p95:.0f} ms")
        record(f"funnel analytics uncached, {args.leads} leads, last {args.days} days", "; ".join(figures))
    finally:
        if not args.keep:
            drop_db(DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())

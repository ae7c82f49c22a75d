"""Segments: p95 latency of the segment lists and members at 100k leads / 1M interactions.

    .venv/bin/python bench/segments.py [--leads 100000] [--interactions 1000000] [--repeat 20]

Against a fresh copy of the seeded database (``seed_bench``, DEBUG off), five segments are
saved through the service — profile fields only, score range + stage, a behaviour with a property
match counted in a time window (``page_view`` url contains ``/pricing`` at least 2 times in 90
days), "never opened an email" combined with a fit range (match any), and a static list of 1,000
leads — then Django's test client requests, --repeat (20) times after two warm-ups each: the
segment list API (every live count in one aggregate), each segment's members API (a page and its
count), the /segments/ page, each segment's page (the leads list filtered by it) and the funnel
API filtered by the behaviour segment. Reports p50/p95/max and query counts; target p95 < 200 ms.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import AS_OF, drop_db, flush_redis, percentile, record, seeded_db, setup_django

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
DB = "lf_bench_segments"

SEGMENTS = {
    "profile": {
        "match": "all",
        "conditions": [
            {"field": "title", "operator": "contains", "value": "VP"},
            {"field": "country", "operator": "in", "value": ["DE", "FR", "US"]},
        ],
    },
    "score+stage": {
        "match": "all",
        "conditions": [
            {"field": "score", "operator": "between", "value": [40, 100]},
            {"field": "stage", "operator": "in", "value": ["mql", "sal"]},
        ],
    },
    "pricing 2x/90d": {
        "match": "all",
        "conditions": [
            {
                "behaviour": "page_view",
                "property": "url",
                "operator": "contains",
                "value": "/pricing",
                "at_least": 2,
                "within_days": 90,
            }
        ],
    },
    "never opened or fit": {
        "match": "any",
        "conditions": [
            {"behaviour": "email_open", "never": True},
            {"field": "fit_score", "operator": "gte", "value": 80},
        ],
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    name = f"segments {args.leads // 1000}k/{args.interactions // 1000}k"
    setup_django(DB)
    seeded_db(DB, args.leads, args.interactions)
    flush_redis()

    from datetime import date, timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from leads import services
    from leads.models import Lead
    from leads.selectors import segment_q

    rows = []
    try:
        marketer = get_user_model().objects.get(username="bench-marketer")
        client = Client()
        client.force_login(marketer, backend=MODEL_BACKEND)
        token, _ = Token.objects.get_or_create(user=marketer)
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
        saved = {label: services.segment_create(data={"name": label, "definition": d}) for label, d in SEGMENTS.items()}
        static = services.segment_create(data={"name": "static 1k", "kind": "static"})
        services.segment_members_add(
            segment=static, lead_ids=Lead.objects.order_by("?").values_list("pk", flat=True)[:1000]
        )
        saved["static 1k"] = static
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        until = date.fromisoformat(AS_OF)
        since = until - timedelta(days=90)
        targets = [
            ("api GET /api/v1/segments/ (5 live counts)", "/api/v1/segments/"),
            ("page /segments/", "/segments/"),
        ]
        for label, segment in saved.items():
            targets.append((f"api segment leads [{label}]", f"/api/v1/segments/{segment.pk}/leads/"))
            targets.append((f"page /segments/<id>/ [{label}]", f"/segments/{segment.pk}/"))
        behaviour = saved["pricing 2x/90d"].pk
        targets.append(
            (
                "api GET /api/v1/funnel/?segment [pricing]",
                f"/api/v1/funnel/?since={since}&until={until}&segment={behaviour}",
            )
        )
        for label, url in targets:
            times, queries, statuses = [], [], set()
            for i in range(args.repeat + 2):
                if "funnel" in url:
                    flush_redis()  # the funnel answer is cached: measure it computed
                with CaptureQueriesContext(connection) as ctx:
                    started = time.perf_counter()
                    response = client.get(url)
                    elapsed = time.perf_counter() - started
                statuses.add(response.status_code)
                if i >= 2:
                    times.append(elapsed * 1000)
                    queries.append(len(ctx.captured_queries))
            rows.append((label, times, queries, statuses))
            p95 = percentile(times, 95)
            print(
                f"{label:<48} p50 {percentile(times, 50):7.1f}ms p95 {p95:7.1f}ms max {max(times):7.1f}ms "
                f"queries {min(queries)}-{max(queries)} status {sorted(statuses)}"
                f"{'' if p95 < 200 else '  <-- over 200 ms'}",
                flush=True,
            )
        sizes = ", ".join(f"{label} {Lead.objects.filter(segment_q(s)).count()}" for label, s in saved.items())
    finally:
        connections.close_all()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    ok = [r for r in rows if percentile(r[1], 95) < 200 and r[3] <= {200}]
    worst = max(rows, key=lambda r: percentile(r[1], 95)) if rows else None
    parts = "; ".join(f"{label} p95 {percentile(t, 95):.0f}ms q{max(q)}" for label, t, q, s in rows)
    passed = rows and len(ok) == len(rows)
    record(
        name,
        f"{len(ok)}/{len(rows)} under 200 ms p95 with status 200"
        + (f"; worst {worst[0]} p95 {percentile(worst[1], 95):.0f}ms" if worst else "")
        + f" | members: {sizes} | {parts} | {'PASS' if passed else 'FAIL'}",
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

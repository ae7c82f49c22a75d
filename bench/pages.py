"""Dashboard pages and list APIs: p95 latency at 100k leads / 1M interactions.

    .venv/bin/python bench/pages.py [--leads 100000] [--interactions 1000000] [--repeat 20]

Django's test client, in this process, against a fresh copy of the seeded and
scored database (DEBUG off): each page or API is requested --repeat (20) times after
two warm-up requests (lead pages walk over different leads), and its p50/p95/max
and query count are reported. Target: p95 < 200 ms for each.
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import AS_OF, drop_db, flush_redis, percentile, record, seeded_db, setup_django

# force_login would pick the first backend (the lockout guard, which loads no user).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
DB = "lf_bench_pages"


def targets(lead_ids: list[int], mql_ids: list[int], owner_id: int, since: str, until: str):
    """(label, who, url or url-factory) for every page and API measured."""
    rng = random.Random(11)

    def lead_page(prefix: str, suffix: str = "", pool=lead_ids):
        return lambda: f"{prefix}{rng.choice(pool)}/{suffix}"

    return [
        ("page /", "marketer", "/"),
        ("page / by channel", "marketer", "/?period=90d&group_by=channel"),
        ("page /leads/", "marketer", "/leads/"),
        ("page /leads/ filtered", "marketer", "/leads/?stage=mql&score_min=60&sort=-score"),
        ("page /leads/ searched", "marketer", "/leads/?q=smith"),
        ("page /leads/ searched+filtered", "marketer", "/leads/?q=garcia&stage=visitor&source=website"),
        ("page /leads/<id>/", "marketer", lead_page("/leads/")),
        ("page /leads/<mql id>/", "marketer", lead_page("/leads/", pool=mql_ids)),
        ("page /queue/", "rep", "/queue/"),
        ("page /pipeline/", "rep", "/pipeline/"),
        ("api GET /api/v1/leads/", "marketer", "/api/v1/leads/"),
        ("api GET /api/v1/leads/?stage&min_score", "marketer", "/api/v1/leads/?stage=mql&min_score=60"),
        ("api GET /api/v1/leads/?search", "marketer", "/api/v1/leads/?search=smith"),
        ("api GET /api/v1/leads/?owner&stage", "marketer", f"/api/v1/leads/?owner={owner_id}&stage=mql,sal"),
        ("api GET /api/v1/leads/<id>/", "marketer", lead_page("/api/v1/leads/")),
        ("api GET /api/v1/leads/<id>/score/", "marketer", lead_page("/api/v1/leads/", "score/")),
        ("api GET /api/v1/leads/<id>/timeline/", "marketer", lead_page("/api/v1/leads/", "timeline/")),
        ("api GET /api/v1/funnel/", "marketer", f"/api/v1/funnel/?since={since}&until={until}"),
        (
            "api GET /api/v1/funnel/?group_by=source",
            "marketer",
            f"/api/v1/funnel/?since={since}&until={until}&group_by=source",
        ),
        (
            "api GET /api/v1/funnel/?group_by=owner",
            "marketer",
            f"/api/v1/funnel/?since={since}&until={until}&group_by=owner",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", default="", help="Measure only targets whose label contains this text.")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    name = f"pages {args.leads // 1000}k/{args.interactions // 1000}k"
    setup_django(DB)
    seeded_db(DB, args.leads, args.interactions, scored=True)
    flush_redis()

    from datetime import date, timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from leads.models import Lead

    rows = []
    try:
        users = get_user_model().objects
        marketer = users.get(username="bench-marketer")
        # The rep holding the most open MQLs: the fullest queue.
        busiest = (
            Lead.objects.filter(stage="mql", owner__isnull=False)
            .values("owner_id")
            .order_by()
            .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("id"))
            .order_by("-n")
            .first()
        )
        rep = users.get(pk=busiest["owner_id"])
        clients = {}
        for who, user in (("marketer", marketer), ("rep", rep)):
            client = Client()
            client.force_login(user, backend=MODEL_BACKEND)
            token, _ = Token.objects.get_or_create(user=user)
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
            clients[who] = client
        rng = random.Random(5)
        all_ids = list(Lead.objects.values_list("id", flat=True))
        lead_ids = rng.sample(all_ids, min(500, len(all_ids)))
        mql_ids = list(Lead.objects.filter(stage="mql").values_list("id", flat=True)[:500]) or lead_ids
        until = date.fromisoformat(AS_OF)
        since = until - timedelta(days=90)
        for label, who, url in targets(lead_ids, mql_ids, rep.pk, since.isoformat(), until.isoformat()):
            if args.only and args.only not in label:
                continue
            client = clients[who]
            times, queries, statuses = [], [], set()
            for i in range(args.repeat + 2):
                path = url() if callable(url) else url
                with CaptureQueriesContext(connection) as ctx:
                    started = time.perf_counter()
                    response = client.get(path)
                    if hasattr(response, "streaming_content"):
                        b"".join(response.streaming_content)
                    elapsed = time.perf_counter() - started
                statuses.add(response.status_code)
                if i >= 2:
                    times.append(elapsed * 1000)
                    queries.append(len(ctx.captured_queries))
            rows.append((label, times, queries, statuses))
            p95 = percentile(times, 95)
            print(
                f"{label:<45} p50 {percentile(times, 50):7.1f}ms p95 {p95:7.1f}ms max {max(times):7.1f}ms "
                f"queries {min(queries)}-{max(queries)} status {sorted(statuses)}{'' if p95 < 200 else '  <-- over 200 ms'}",
                flush=True,
            )
    finally:
        connections.close_all()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    ok = [r for r in rows if percentile(r[1], 95) < 200 and r[3] <= {200}]
    slow = [r for r in rows if r not in ok]
    worst = max(rows, key=lambda r: percentile(r[1], 95)) if rows else None
    parts = "; ".join(
        f"{label} p95 {percentile(t, 95):.0f}ms q{max(q)}" + ("" if s <= {200} else f" status {sorted(s)}")
        for label, t, q, s in rows
    )
    record(
        name,
        f"{len(ok)}/{len(rows)} under 200 ms p95 with status 200"
        + (f"; worst {worst[0]} p95 {percentile(worst[1], 95):.0f}ms" if worst else "")
        + f" | {parts} | {'PASS' if rows and not slow else 'FAIL'}",
    )
    return 0 if rows and not slow else 1


if __name__ == "__main__":
    sys.exit(main())

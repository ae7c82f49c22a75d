"""Scoring back-test over the recorded history: wall time at 100k leads / 1M interactions.

    .venv/bin/python bench/backtest.py [--leads 100000] [--interactions 1000000]

POST /api/v1/scoring/backtest/ (a candidate with a lower MQL threshold against the current
model, over the last 180 days) through Django's test client on a fresh copy of the seeded
and scored data set, with the job run inside the request (BACKTEST_SYNC_INTERACTIONS raised)
so the wall time is the whole replay. Target: < 120 s. Runs only once the endpoint exists.
"""

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import AS_OF, drop_db, flush_redis, record, seeded_db, setup_django

# force_login would pick the first backend (the lockout guard, which loads no user).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
DB = "lf_bench_backtest"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    name = f"backtest {args.leads // 1000}k/{args.interactions // 1000}k"
    setup_django(DB)
    from django.conf import settings
    from django.db import connections
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/v1/scoring/backtest/")
    except Resolver404:
        record(name, "NOT RUN: POST /api/v1/scoring/backtest/ does not exist yet")
        return 1
    seeded_db(DB, args.leads, args.interactions, scored=True)
    flush_redis()
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.BACKTEST_SYNC_INTERACTIONS = 10**12
    until = date.fromisoformat(AS_OF)
    body = {
        "settings": {"mql_threshold": 50},
        "since": (until - timedelta(days=180)).isoformat(),
        "until": until.isoformat(),
    }
    try:
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench-marketer"), backend=MODEL_BACKEND)
        started = time.monotonic()
        response = client.post("/api/v1/scoring/backtest/", body, content_type="application/json")
        elapsed = time.monotonic() - started
        answer = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    finally:
        connections.close_all()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)
    status = answer.get("status", "?")
    passed = response.status_code == 200 and status in ("done", "finished", "succeeded") and elapsed < 120
    summary = {k: answer[k] for k in ("status", "done", "total") if k in answer}
    record(
        name,
        f"{elapsed:.1f}s (target < 120s) | HTTP {response.status_code} {summary} | threshold 60 -> 50 over 180 days | "
        + ("PASS" if passed else "FAIL"),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Bulk interactions over HTTP: events/s through POST /api/v1/interactions/bulk/, scores updated.

    .venv/bin/python bench/bulk_interactions.py [--clients 4] [--duration 30] [--batch 1000]

gunicorn (2 x cores sync workers, DEBUG off) on a fresh copy of the seeded and scored
data set; --clients threads on 127.0.0.1 post batches of --batch events (existing leads
by email, a realistic mix of types) for --duration seconds. Bodies are serialised
before the clock starts so the client costs as little CPU as possible.
Target: >= 10,000 events/s, every accepted event stored, lead scores moved.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Gunicorn, drop_db, flush_redis, percentile, record, seeded_db, setup_django

DB = "lf_bench_bulk"
SOURCE = "bench-bulk"
MIX = [
    ("page_view", {"url": "https://www.leadfunnel.example/pricing"}, 30),
    ("page_view", {"url": "https://www.leadfunnel.example/blog/what-is-an-mql"}, 25),
    ("email_open", {"campaign": "welcome"}, 15),
    ("email_click", {"campaign": "welcome", "url": "https://www.leadfunnel.example/features/scoring"}, 8),
    ("content_download", {"asset": "ebook-funnel-metrics"}, 8),
    ("webinar_attended", {"webinar": "scoring-101", "minutes": 42}, 5),
    ("product_usage", {"feature": "rules", "count": 3}, 7),
    ("demo_request", {"form": "demo-request"}, 2),
]


def make_bodies(emails: list[str], batch: int, count: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    kinds = [(k, p) for k, p, _ in MIX]
    weights = [w for *_, w in MIX]
    bodies = []
    for _ in range(count):
        events = []
        for kind, props in rng.choices(kinds, weights=weights, k=batch):
            events.append({"email": rng.choice(emails), "type": kind, "properties": props})
        bodies.append(json.dumps({"source": SOURCE, "events": events}).encode())
    return bodies


def client_loop(port: int, token: str, bodies: list[bytes], stop_at: float, out: dict, lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    accepted = requests = errors = 0
    latencies = []
    first_error = None
    i = 0
    while time.monotonic() < stop_at:
        body = bodies[i % len(bodies)]
        i += 1
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/interactions/bulk/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors += 1
            first_error = first_error or repr(exc)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        latencies.append(time.perf_counter() - started)
        requests += 1
        if response.status != 200:
            errors += 1
            first_error = first_error or f"{response.status} {data[:300]!r}"
            continue
        answer = json.loads(data)
        accepted += answer.get("accepted", 0)
        if answer.get("errors"):
            errors += 1
            first_error = first_error or f"item errors: {answer['errors'][:3]}"
    conn.close()
    with lock:
        out["accepted"] += accepted
        out["requests"] += requests
        out["errors"] += errors
        out["latencies"] += latencies
        out["first_error"] = out["first_error"] or first_error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    name = "bulk-interactions"
    setup_django(DB)
    from django.db import connections
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/v1/interactions/bulk/")
    except Resolver404:
        record(name, "NOT RUN: POST /api/v1/interactions/bulk/ does not exist yet")
        return 1
    seeded_db(DB, args.leads, args.interactions, scored=True)
    flush_redis()

    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from rest_framework.authtoken.models import Token

    from leads.models import Interaction, Lead

    rng = random.Random(9)
    marketer = get_user_model().objects.get(username="bench-marketer")
    token = Token.objects.get_or_create(user=marketer)[0].key
    sample = list(Lead.objects.values_list("id", "email"))
    sample = rng.sample(sample, min(20_000, len(sample)))
    emails = [e for _, e in sample]
    ids = [i for i, _ in sample]
    before = dict(Lead.objects.filter(pk__in=ids).values_list("id", "score"))
    before_updated = Lead.objects.aggregate(m=Max("score_updated_at"))["m"]
    connections.close_all()
    bodies = make_bodies(emails, args.batch, 40)
    out = {"accepted": 0, "requests": 0, "errors": 0, "latencies": [], "first_error": None}
    lock = threading.Lock()
    try:
        with Gunicorn(DB) as server:
            # Warm-up: one small batch per worker, not counted.
            warm = make_bodies(emails, 10, 1, seed=99)
            client_loop(server.port, token, warm, time.monotonic() + 2, {**out, "latencies": []}, threading.Lock())
            stored_before = Interaction.objects.filter(source=SOURCE).count()
            connections.close_all()
            stop_at = time.monotonic() + args.duration
            started = time.monotonic()
            threads = [
                threading.Thread(
                    target=client_loop, args=(server.port, token, bodies[i::1], stop_at, out, lock), daemon=True
                )
                for i in range(args.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.duration + 180)
            elapsed = time.monotonic() - started
            tracebacks = server.log_path.read_text(errors="replace").count("Traceback")
        stored = Interaction.objects.filter(source=SOURCE).count() - stored_before
        after = dict(Lead.objects.filter(pk__in=ids).values_list("id", "score"))
        moved = sum(1 for i in ids if after.get(i) != before.get(i))
        touched = Lead.objects.filter(score_updated_at__gt=before_updated).count() if before_updated else -1
    finally:
        connections.close_all()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    rate = out["accepted"] / elapsed if elapsed else 0.0
    ms = [x * 1000 for x in out["latencies"]]
    passed = rate >= 10_000 and out["errors"] == 0 and stored == out["accepted"] and touched > 0 and tracebacks == 0
    record(
        name,
        f"{rate:,.0f} events/s (target >= 10,000) | {out['accepted']} accepted in {out['requests']} requests of "
        f"{args.batch} over {elapsed:.1f}s by {args.clients} clients, request p50 {percentile(ms, 50):.0f}ms "
        f"p95 {percentile(ms, 95):.0f}ms | stored {stored} | leads re-scored {touched} "
        f"(score changed on {moved} of {len(ids)} sampled) | errors {out['errors']}"
        + (f" first: {out['first_error']}" if out["first_error"] else "")
        + f" | server tracebacks {tracebacks} | {args.leads // 1000}k/{args.interactions // 1000}k data set | "
        + ("PASS" if passed else "FAIL"),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

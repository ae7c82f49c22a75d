"""Bulk interactions over HTTP: events/s stored and scored through POST /api/v1/interactions/bulk/.

    .venv/bin/python bench/bulk_interactions.py [--leads 100000 --interactions 1000000] [--clients 4]
        [--duration 30] [--batch 1000] [--sample-leads 5]

gunicorn (2 x cores sync workers, DEBUG off) on a fresh copy of the seeded and scored data set, with
a Celery worker (queues events,nurture,bulk, no beat) against the same database and the bench's Redis
database. --clients threads on 127.0.0.1 post batches of --batch events (existing leads by email, a
realistic mix of types) for --duration seconds. Bodies are serialised before the clock starts so the
client costs as little CPU as possible. Each body carries --sample-leads leads that appear in no other
body: after each answer, the time until none of them has a row left in scoring_pendingscore (their
scores and stages reflect the request; "in the request" without that table), and after the load the
time until that table is empty.

Target: >= 10,000 events/s, every accepted event stored, 0 errors, score/stage p95 <= 1 s, backlog
empty within 5 s of the load's end.
"""

import argparse
import http.client
import itertools
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CeleryWorker,
    Gunicorn,
    PendingScores,
    drop_db,
    flush_redis,
    percentile,
    record,
    seeded_db,
    setup_django,
)

DB = "lf_bench_bulk"
SOURCE = "bench-bulk"
BODIES = 60
SCORE_P95_TARGET_MS = 1000
DRAIN_TARGET_S = 5.0
DRAIN_CAP_S = 30.0
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


def make_bodies(
    emails: list[str], batch: int, count: int, *, sampled: list[list[tuple[int, str]]] | None = None, seed: int = 3
) -> list[tuple[bytes, tuple[int, ...]]]:
    """``count`` request bodies of ``batch`` events for random leads of ``emails``; body i also holds one
    event for each lead of ``sampled[i]`` (leads found in no other body), whose ids come with it."""
    rng = random.Random(seed)
    kinds = [(k, p) for k, p, _ in MIX]
    weights = [w for *_, w in MIX]
    bodies = []
    for i in range(count):
        mine = sampled[i] if sampled else []
        targets = [rng.choice(emails) for _ in range(batch - len(mine))] + [email for _, email in mine]
        rng.shuffle(targets)
        events = [
            {"email": email, "type": kind, "properties": props}
            for email, (kind, props) in zip(targets, rng.choices(kinds, weights=weights, k=batch), strict=True)
        ]
        bodies.append((json.dumps({"source": SOURCE, "events": events}).encode(), tuple(i for i, _ in mine)))
    return bodies


class Load:
    """What the client threads share: the next body to post (each body in turn, so concurrent requests
    carry different leads), the totals, and the score/stage latency poller."""

    def __init__(self, bodies, scores: PendingScores | None) -> None:
        self.bodies = bodies
        self.scores = scores
        self.turn = itertools.count()
        self.lock = threading.Lock()
        self.accepted = self.requests = self.errors = 0
        self.latencies: list[float] = []
        self.first_error: str | None = None

    def next_body(self):
        with self.lock:
            return self.bodies[next(self.turn) % len(self.bodies)]


def client_loop(port: int, token: str, load: Load, stop_at: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    accepted = requests = errors = 0
    latencies = []
    first_error = None
    while time.monotonic() < stop_at:
        body, sampled = load.next_body()
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
        answered = time.monotonic()
        latencies.append(time.perf_counter() - started)
        requests += 1
        if response.status != 200:
            errors += 1
            first_error = first_error or f"{response.status} {data[:300]!r}"
            continue
        answer = json.loads(data)
        accepted += answer.get("accepted", 0)
        if sampled and load.scores is not None:
            load.scores.watch(sampled, answered)
        if answer.get("errors"):
            errors += 1
            first_error = first_error or f"item errors: {answer['errors'][:3]}"
    conn.close()
    with load.lock:
        load.accepted += accepted
        load.requests += requests
        load.errors += errors
        load.latencies += latencies
        load.first_error = load.first_error or first_error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000, help="data set size (10000 for a trial)")
    parser.add_argument("--interactions", type=int, default=1_000_000, help="data set size (100000 for a trial)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads (default 4)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load (default 30)")
    parser.add_argument("--batch", type=int, default=1000, help="events per request (default 1000)")
    parser.add_argument("--sample-leads", type=int, default=5, help="leads of each request timed until scored")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes (default 2)")
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

    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from rest_framework.authtoken.models import Token

    from leads.models import Interaction, Lead

    rng = random.Random(9)
    marketer = get_user_model().objects.get(username="bench-marketer")
    token = Token.objects.get_or_create(user=marketer)[0].key
    everyone = list(Lead.objects.values_list("id", "email"))
    rng.shuffle(everyone)
    # Leads timed until scored appear in one body only, so a pending row of theirs is that body's.
    per_body = min(args.sample_leads, args.batch)
    reserved = everyone[: BODIES * per_body]
    sample = everyone[len(reserved) : len(reserved) + 20_000]
    sampled = [reserved[i * per_body : (i + 1) * per_body] for i in range(BODIES)]
    emails = [e for _, e in sample]
    ids = [i for i, _ in sample]
    before = dict(Lead.objects.filter(pk__in=ids).values_list("id", "score"))
    before_updated = Lead.objects.aggregate(m=Max("score_updated_at"))["m"]
    connections.close_all()
    bodies = make_bodies(emails, args.batch, BODIES, sampled=sampled)
    # Stale messages of an earlier run would give the worker work that is not this run's.
    flush_redis()
    scores = None
    try:
        with CeleryWorker(DB, concurrency=args.worker_concurrency) as worker, Gunicorn(DB) as server:
            scores = PendingScores(DB)
            # Warm-up: small batches for 2 s, not counted; then let their scoring finish.
            warm = Load(make_bodies(emails, 10, 4, seed=99), None)
            client_loop(server.port, token, warm, time.monotonic() + 2)
            scores.wait_drained(cap=DRAIN_CAP_S)
            scores.take()
            stored_before = Interaction.objects.filter(source=SOURCE).count()
            connections.close_all()
            load = Load(bodies, scores)
            stop_at = time.monotonic() + args.duration
            started = time.monotonic()
            threads = [
                threading.Thread(target=client_loop, args=(server.port, token, load, stop_at), daemon=True)
                for _ in range(args.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.duration + 180)
            load_end = time.monotonic()
            elapsed = load_end - started
            drained, backlog = scores.wait_drained(since=load_end, cap=DRAIN_CAP_S)
            scores.wait_samples(cap=max(0.0, DRAIN_CAP_S - (time.monotonic() - load_end)))
            latencies, unfinished = scores.take()
            in_request = scores.in_request
            server_tracebacks = server.tracebacks()
            worker_tracebacks = worker.tracebacks()
        stored = Interaction.objects.filter(source=SOURCE).count() - stored_before
        after = dict(Lead.objects.filter(pk__in=ids).values_list("id", "score"))
        moved = sum(1 for i in ids if after.get(i) != before.get(i))
        touched = Lead.objects.filter(score_updated_at__gt=before_updated).count() if before_updated else -1
    finally:
        if scores is not None:
            scores.close()
        connections.close_all()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    rate = load.accepted / elapsed if elapsed else 0.0
    # Stored *and scored*: the load's events over the time until the last of them was scored.
    scored_in = elapsed + (drained if drained is not None else float("inf"))
    scored_rate = load.accepted / scored_in
    ms = [x * 1000 for x in load.latencies]
    p95_ms = percentile([x * 1000 for x in latencies], 95) if latencies else float("inf")
    score_ok = in_request or (p95_ms <= SCORE_P95_TARGET_MS and unfinished == 0)
    drain_ok = drained is not None and drained <= DRAIN_TARGET_S
    passed = (
        rate >= 10_000
        and load.errors == 0
        and stored == load.accepted
        and touched > 0
        and score_ok
        and drain_ok
        and server_tracebacks == 0
        and worker_tracebacks == 0
    )
    if in_request:
        drain_text = "0s (scoring in the request)"
    elif drained is None:
        drain_text = f"NOT within {DRAIN_CAP_S:.0f}s (backlog {backlog} at the load's end)"
    else:
        drain_text = (
            f"{drained:.2f}s (backlog {backlog} at the load's end); {scored_rate:,.0f} events/s stored and scored"
        )
    record(
        name,
        f"{rate:,.0f} events/s (target >= 10,000) | {load.accepted} accepted in {load.requests} requests of "
        f"{args.batch} over {elapsed:.1f}s by {args.clients} clients, request p50 {percentile(ms, 50):.0f}ms "
        f"p95 {percentile(ms, 95):.0f}ms | stored {stored} ({'ok' if stored == load.accepted else 'MISMATCH'}) | "
        f"{PendingScores.describe(latencies, unfinished, in_request)}, {per_body} leads per request "
        f"(target p95 <= {SCORE_P95_TARGET_MS}ms) | backlog drained in {drain_text} (target <= {DRAIN_TARGET_S:.0f}s) | "
        f"leads re-scored {touched} (score changed on {moved} of {len(ids)} sampled) | errors {load.errors}"
        + (f" first: {load.first_error}" if load.first_error else "")
        + f" | tracebacks server {server_tracebacks} worker {worker_tracebacks} | Celery worker concurrency "
        f"{args.worker_concurrency} | {args.leads // 1000}k/{args.interactions // 1000}k data set | "
        + ("PASS" if passed else "FAIL"),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Intake over HTTP: the public form endpoint against a bare Django view without middleware, same run.

    .venv/bin/python bench/intake.py [--duration 30] [--pairs 3] [--connections 16] [--sample-rate 5]

Two gunicorns (same worker count, 2 x cores, same sync worker class, DEBUG off) on one PostgreSQL
database: LeadFunnel (INTAKE_RATE_LIMIT=off) and the bare baseline (bench.baseline_bare_settings:
no middleware, no apps, one URL doing one ``INSERT … ON CONFLICT (email) DO UPDATE``). A Celery worker
(queues events,nurture,bulk, no beat) runs against the same database and the bench's Redis database.
wrk (`apt-get install -y wrk`, bench/submit.lua, a distinct email per request) alternates app and
baseline runs of --duration seconds (A B A B …, --pairs pairs): the ratio of each pair and their
median. During each app run a sampler posts --sample-rate submissions per second of its own, checks
each 201's lead through GET /api/v1/leads/?email= at once and times until its score and stage
reflect it (no row of scoring_pendingscore left for the lead; "in the request" without that table);
after the run, the time until that table is empty.

Target: median ratio >= 0.5, 0 errors, every 201 stored and readable at once, score/stage p95 <= 1 s,
backlog empty within 5 s of the load's end.
"""

import argparse
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    CeleryWorker,
    Gunicorn,
    PendingScores,
    db_url,
    drop_db,
    flush_redis,
    migrated_db,
    percentile,
    record,
    redis_queue_lengths,
    setup_django,
)

DB = "lf_bench_intake"
FORM_SLUG = "bench-intake"
BASELINE_PATH = "/bench/baseline/submit/"
SCORE_P95_TARGET_MS = 1000
DRAIN_TARGET_S = 5.0
DRAIN_CAP_S = 30.0


def payload(email: str, n: int) -> bytes:
    """The same form payload as bench/submit.lua."""
    return json.dumps(
        {
            "email": email,
            "first_name": "Bench",
            "last_name": f"Lead {n}",
            "title": "Head of Marketing",
            "company": f"Co {n % 997}",
            "company_size": "51-200",
            "country": "DE",
            "consent": True,
            "utm_source": "bench",
            "utm_medium": "cpc",
            "utm_campaign": "load",
            "page_url": "https://www.leadfunnel.example/pricing",
        }
    ).encode()


def wrk(url: str, *, duration: int, connections: int, prefix: str) -> dict:
    threads = min(connections, 2)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "submit.lua"),
            url,
            "--",
            prefix,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.MULTILINE)
    if not match:
        raise RuntimeError("wrk printed no summary:\n" + out)
    data = json.loads(match.group(1))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["errors"] = data["connect"] + data["read"] + data["write"] + data["timeout"] + data["other_status"]
    data["prefix"] = prefix
    return data


def probe(url: str) -> int:
    host, port, path = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        body = json.dumps({"email": "probe@bench-probe.example", "first_name": "Probe"})
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def _split(url: str) -> tuple[str, int, str]:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match, url
    return match.group(1), int(match.group(2)), match.group(3)


class Sampler(threading.Thread):
    """During an app run: ``rate`` submissions per second of its own (distinct emails), each in a thread of
    its own (at most ``max_in_flight`` at once; a tick with none free is skipped and counted) so the rate
    holds while the server is saturated. Right after each 201 it finds the lead in the database (direct
    connection), hands it to the score/stage latency poller, and GETs it through the API with a token:
    "readable at once" means that GET finds it."""

    def __init__(
        self,
        port: int,
        token: str,
        prefix: str,
        rate: float,
        scores: PendingScores,
        db: str,
        max_in_flight: int = 8,
    ) -> None:
        super().__init__(name=f"sampler-{prefix}", daemon=True)
        self.port = port
        self.token = token
        self.prefix = prefix
        self.rate = rate
        self.scores = scores
        self.db = db
        self.max_in_flight = max_in_flight
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.posted = self.created = self.stored = self.readable = self.errors = self.skipped = 0
        self.read_ms: list[float] = []
        self.answered_at: list[float] = []
        self.first_error: str | None = None

    def _error(self, text: str) -> None:
        with self.lock:
            self.errors += 1
            self.first_error = self.first_error or text

    def _count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def run(self) -> None:
        from psycopg2.pool import ThreadedConnectionPool

        pool = ThreadedConnectionPool(1, self.max_in_flight, db_url(self.db))
        slots = threading.BoundedSemaphore(self.max_in_flight)
        threads = []
        next_at = time.monotonic()
        n = 0
        try:
            while not self.stopping.is_set():
                self.stopping.wait(max(0.0, next_at - time.monotonic()))
                if self.stopping.is_set():
                    break
                next_at = max(next_at + 1 / self.rate, time.monotonic())
                if not slots.acquire(blocking=False):
                    self._count("skipped")
                    continue
                n += 1
                thread = threading.Thread(target=self._one, args=(n, pool, slots), daemon=True)
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join(timeout=60)
        finally:
            pool.closeall()

    def _one(self, n: int, pool, slots: threading.BoundedSemaphore) -> None:
        email = f"{self.prefix}-{n}@sample.bench.example"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        pg = pool.getconn()
        pg.autocommit = True
        try:
            conn.request(
                "POST",
                f"/api/v1/forms/{FORM_SLUG}/submit/",
                body=payload(email, n),
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = response.read()
            answered = time.monotonic()
            with self.lock:
                self.posted += 1
                self.answered_at.append(answered)
            if response.status != 201:
                self._error(f"submit {response.status} {body[:200]!r}")
                return
            self._count("created")
            with pg.cursor() as cur:
                cur.execute("SELECT id FROM leads_lead WHERE email = %s", [email])
                row = cur.fetchone()
            if row is None:
                self._error(f"{email}: 201 but no lead stored")
                return
            self._count("stored")
            self.scores.watch([row[0]], answered)
            started = time.monotonic()
            conn.request("GET", f"/api/v1/leads/?email={email}", headers={"Authorization": f"Token {self.token}"})
            response = conn.getresponse()
            body = response.read()
            with self.lock:
                self.read_ms.append((time.monotonic() - started) * 1000)
            if response.status != 200:
                self._error(f"GET lead {response.status} {body[:200]!r}")
                return
            results = json.loads(body).get("results", [])
            if len(results) == 1 and results[0].get("id") == row[0]:
                self._count("readable")
            else:
                self._error(f"{email}: not readable through the API right after its 201: {body[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._error(repr(exc))
        finally:
            conn.close()
            pool.putconn(pg)
            slots.release()


def wait_queues_idle(cap: float = DRAIN_CAP_S) -> bool:
    """Until no Celery message waits in the bench's Redis database, so a baseline run does not share the
    machine with the worker finishing the app run's side effects."""
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if not any(redis_queue_lengths().values()):
            return True
        time.sleep(0.05)
    return False


def fmt(d: dict) -> str:
    return (
        f"{d['rps']:.0f} req/s p50 {d['p50_us'] / 1000:.1f}ms p95 {d['p95_us'] / 1000:.1f}ms "
        f"p99 {d['p99_us'] / 1000:.1f}ms errors {d['errors']}"
    )


def runs(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of each run (default 30)")
    parser.add_argument("--pairs", type=int, default=3, help="app/baseline pairs, alternating (default 3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--sample-rate", type=float, default=5.0, help="sampler submissions per second")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument(
        "--no-stack-baseline",
        action="store_true",
        help="skip the extra run of the baseline view through LeadFunnel's middleware stack",
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("intake: wrk is not installed; run `apt-get install -y wrk` (see bench/README.md)")
        return 2
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")

    migrated_db(DB)
    setup_django(DB)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from bench.baseline import TABLE, ensure_table
    from leads.models import Form, FormSubmission, Lead

    ensure_table(connection)
    Form.objects.create(slug=FORM_SLUG, name="Benchmark form", kind="contact", channel="inbound", channel_weight=5)
    admin = get_user_model().objects.create_superuser("bench-admin", "bench-admin@leadfunnel.example", None)
    token = Token.objects.create(user=admin).key
    connection.close()
    # Stale messages of an earlier run would give the worker work that is not this run's.
    flush_redis()
    nonce = str(int(time.time()))
    pairs: list[tuple[dict, dict]] = []
    samplers: list[Sampler] = []
    latencies: list[float] = []
    unfinished = 0
    drains: list[tuple[float | None, int]] = []
    queues_idle: list[bool] = []
    stack = None
    scores = None
    try:
        # Both servers stay up for the whole run and the idle one costs nothing: its sync workers sleep
        # in accept(). Restarting a server for each run would add its start-up and first-request
        # warm-up (imports, connections) to every run instead. The worker is idle during baseline runs:
        # each baseline run starts once the app run's scoring backlog and Celery queues are empty.
        with (
            CeleryWorker(DB, concurrency=args.worker_concurrency) as worker,
            Gunicorn(DB) as server,
            Gunicorn(
                DB,
                workers=server.workers,
                app="bench.baseline.bare_wsgi:application",
                settings="bench.baseline_bare_settings",
                ready_path=BASELINE_PATH,
            ) as bare,
        ):
            assert bare.worker_class == server.worker_class
            app_url = f"{server.base}/api/v1/forms/{FORM_SLUG}/submit/"
            bare_url = bare.base + BASELINE_PATH
            status = probe(app_url)
            if status != 201:
                record(
                    "intake-http",
                    f"NOT RUN: POST /api/v1/forms/{FORM_SLUG}/submit/ answered {status}, not 201 (intake not available)",
                )
                return 1
            assert probe(bare_url) == 201
            assert probe(server.base + BASELINE_PATH) == 201
            for url in (app_url, bare_url):
                wrk(url, duration=args.warmup, connections=args.connections, prefix=f"warm{nonce}")
            scores = PendingScores(DB)
            scores.wait_drained(cap=DRAIN_CAP_S)
            wait_queues_idle()
            scores.take()
            for k in range(args.pairs):
                sampler = Sampler(server.port, token, f"smp{nonce}p{k}", args.sample_rate, scores, DB)
                sampler.start()
                load_start = time.monotonic()
                app = wrk(app_url, duration=args.duration, connections=args.connections, prefix=f"app{nonce}p{k}")
                load_end = time.monotonic()
                sampler.stopping.set()
                sampler.join(timeout=60)
                samplers.append(sampler)
                # The sampler's submissions are the same requests as wrk's, served under the same load:
                # they count in the app's req/s (its GETs do not: extra work the app is not credited for).
                app["wrk_rps"] = app["rps"]
                app["sampled"] = sum(1 for t in sampler.answered_at if load_start <= t <= load_end)
                app["rps"] = (app["requests"] + app["sampled"]) / (app["duration_us"] / 1e6)
                drains.append(scores.wait_drained(since=load_end, cap=DRAIN_CAP_S))
                scores.wait_samples(cap=max(0.0, DRAIN_CAP_S - (time.monotonic() - load_end)))
                lat, left = scores.take()
                latencies += lat
                unfinished += left
                queues_idle.append(wait_queues_idle())
                base = wrk(bare_url, duration=args.duration, connections=args.connections, prefix=f"base{nonce}p{k}")
                pairs.append((app, base))
                print(
                    f"intake: pair {k + 1}/{args.pairs}: app {app['rps']:.0f} req/s, bare baseline "
                    f"{base['rps']:.0f} req/s, ratio {app['rps'] / base['rps'] if base['rps'] else 0:.2f}",
                    flush=True,
                )
            if not args.no_stack_baseline:
                stack = wrk(
                    server.base + BASELINE_PATH,
                    duration=args.duration,
                    connections=args.connections,
                    prefix=f"stack{nonce}",
                )
            in_request = scores.in_request
            server_tracebacks = server.tracebacks() + bare.tracebacks()
            worker_tracebacks = worker.tracebacks()
            workers = server.workers
        time.sleep(0.5)
        stored = []
        for app, base in pairs:
            leads = Lead.objects.filter(email__startswith=app["prefix"] + "-").count()
            subs = FormSubmission.objects.filter(lead__email__startswith=app["prefix"] + "-").count()
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE email LIKE %s", [base["prefix"] + "-%"])
                rows = cursor.fetchone()[0]
            stored.append((leads, subs, rows))
        stack_rows = None
        if stack:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE email LIKE %s", [stack["prefix"] + "-%"])
                stack_rows = cursor.fetchone()[0]
    finally:
        if scores is not None:
            scores.close()
        connection.close()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    c = args.connections
    ratios = [a["rps"] / b["rps"] if b["rps"] else 0.0 for a, b in pairs]
    median = statistics.median(ratios)
    # A request still in flight when wrk stops may be stored without being counted, so at most
    # `connections` more rows than 201s; fewer rows than 201s would be a lost lead.
    app_ok = all(
        a["created"] <= s[0] <= a["created"] + c and s[1] >= a["created"]
        for (a, _), s in zip(pairs, stored, strict=True)
    )
    base_ok = all(b["created"] <= s[2] <= b["created"] + c for (_, b), s in zip(pairs, stored, strict=True))
    app_errors = sum(a["errors"] for a, _ in pairs)
    base_errors = sum(b["errors"] for _, b in pairs)
    s_created = sum(s.created for s in samplers)
    s_posted = sum(s.posted for s in samplers)
    s_stored = sum(s.stored for s in samplers)
    s_readable = sum(s.readable for s in samplers)
    s_errors = sum(s.errors for s in samplers)
    s_skipped = sum(s.skipped for s in samplers)
    s_first = next((s.first_error for s in samplers if s.first_error), None)
    read_ms = [x for s in samplers for x in s.read_ms]
    p95_ms = percentile([x * 1000 for x in latencies], 95) if latencies else float("inf")
    score_ok = in_request or (latencies and p95_ms <= SCORE_P95_TARGET_MS and unfinished == 0)
    drain_ok = all(d is not None and d <= DRAIN_TARGET_S for d, _ in drains)
    drain_text = ", ".join(
        (f"{d:.2f}s" if d is not None else f"not within {DRAIN_CAP_S:.0f}s") + f" (backlog {b})" for d, b in drains
    )
    passed = (
        median >= 0.5
        and app_errors == 0
        and base_errors == 0
        and app_ok
        and base_ok
        and s_posted > 0
        and s_errors == 0
        and s_readable == s_created == s_posted
        and bool(score_ok)
        and drain_ok
        and server_tracebacks == 0
        and worker_tracebacks == 0
    )
    app_rps = [a["rps"] for a, _ in pairs]
    base_rps = [b["rps"] for _, b in pairs]
    stack_text = ""
    if stack:
        stack_text = (
            f" | baseline through LeadFunnel's middleware stack {fmt(stack)}, app median "
            f"{statistics.median(app_rps):.0f} / it = {statistics.median(app_rps) / stack['rps']:.2f}"
            f" ({stack_rows} rows for {stack['created']} x 201)"
        )
    record(
        "intake-http",
        f"app {runs(app_rps)} req/s (wrk {runs([a['wrk_rps'] for a, _ in pairs])} + sampler), "
        f"last {fmt(pairs[-1][0])} | bare baseline (no middleware) {runs(base_rps)} req/s, "
        f"last {fmt(pairs[-1][1])} | ratio per pair {'/'.join(f'{r:.2f}' for r in ratios)}, median {median:.2f} "
        f"(target >= 0.50){stack_text} | errors app {app_errors} baseline {base_errors} | 201s stored: app "
        f"{sum(s[0] for s in stored)} leads/{sum(s[1] for s in stored)} submissions for "
        f"{sum(a['created'] for a, _ in pairs)} x 201, baseline {sum(s[2] for s in stored)} for "
        f"{sum(b['created'] for _, b in pairs)} ({'ok' if app_ok and base_ok else 'MISMATCH'}) | sampler "
        f"{s_posted} submissions at {args.sample_rate:g}/s: {s_created} x 201, {s_stored} stored, {s_readable} "
        f"readable at once (GET p95 {percentile(read_ms, 95):.0f}ms), {s_skipped} ticks skipped (all in flight), "
        f"errors {s_errors}"
        + (f" first: {s_first}" if s_first else "")
        + f" | {PendingScores.describe(latencies, unfinished, in_request)} (target p95 <= {SCORE_P95_TARGET_MS}ms)"
        + " | backlog drained in "
        + ("0s (scoring in the request)" if in_request else drain_text)
        + f" (target <= {DRAIN_TARGET_S:.0f}s)"
        + ("" if all(queues_idle) else " | Celery queues not empty before a baseline run")
        + f" | tracebacks server {server_tracebacks} worker {worker_tracebacks} | {c} clients x {args.duration}s"
        f" x {len(pairs)} pairs, gunicorn {workers} sync workers each, Celery worker concurrency "
        f"{args.worker_concurrency} | {'PASS' if passed else 'FAIL'}",
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

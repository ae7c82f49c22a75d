"""Full rescore of the seeded data set (wall time, peak and curve of memory) and the incremental path.

    .venv/bin/python bench/rescore.py [--leads 100000] [--interactions 1000000]

Runs `manage.py recompute_scores` (the scoring engine's full recompute, in this
process's child; RSS and CPU cover its worker processes too) on a fresh copy of the
seeded database while sampling its RSS every 50 ms; then times single
`POST /api/v1/interactions/` calls (the incremental path: store + score in one
transaction) through Django's test client.
Targets: full recompute < 60 s with flat memory.
"""

import argparse
import contextlib
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PY,
    ROOT,
    drop_db,
    env_for,
    flush_redis,
    module_has,
    percentile,
    record,
    seeded_db,
    setup_django,
)

DB = "lf_bench_rescore"


def run_sampled(cmd: list[str], env: dict) -> tuple[int, float, list[tuple[float, int]], str]:
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = psutil.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[float, int]] = []
    cpu = 0.0
    while proc.poll() is None:
        try:
            # The command and its worker processes (if any): RSS of the whole tree.
            rss = proc.memory_info().rss
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += child.memory_info().rss
            samples.append((time.monotonic() - started, rss))
            times = proc.cpu_times()
            cpu = times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            break
        time.sleep(0.05)
    proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The command's CPU time including its worker processes (exact once it has been reaped):
    # what the run costs on an idle machine.
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run_sampled.cpu_seconds = max(cpu, reaped)
    elapsed = time.monotonic() - started
    output = proc.stdout.read()
    return proc.returncode, elapsed, samples, output


def memory_shape(samples: list[tuple[float, int]], elapsed: float) -> tuple[int, int, int, bool]:
    """Peak RSS, max RSS in the second fifth of the run, max in the last fifth; flat if it grew < 64 MiB."""
    if not samples:
        return 0, 0, 0, False
    peak = max(r for _, r in samples)
    early = [r for t, r in samples if 0.2 * elapsed <= t < 0.4 * elapsed] or [samples[0][1]]
    late = [r for t, r in samples if t >= 0.8 * elapsed] or [samples[-1][1]]
    early_max, late_max = max(early), max(late)
    return peak, early_max, late_max, late_max - early_max < 64 * 2**20


def keep_as_scored_template(leads: int, interactions: int) -> None:
    """The recomputed database is what the other benchmarks start from: keep it instead of recomputing again."""
    from django.db import connections

    from bench.common import _admin, create_db, db_exists, list_dbs, scored_template_name

    name = scored_template_name(leads, interactions)
    if db_exists(name):
        return
    connections.close_all()
    for stale in list_dbs(f"lf_bench_tps_{leads}_{interactions}_"):
        drop_db(stale)
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{DB}" RENAME TO "{name}"')
    finally:
        conn.close()
    create_db(DB, template=name)
    print(f"rescore: kept the recomputed database as {name}", flush=True)


def incremental(n: int) -> tuple[list[float], list[int], int]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from leads.models import Lead

    user_model = __import__("django.contrib.auth", fromlist=["get_user_model"]).get_user_model()
    marketer = user_model.objects.get(username="bench-marketer")
    token, _ = Token.objects.get_or_create(user=marketer)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    rng = random.Random(7)
    max_id = Lead.objects.order_by("-id").values_list("id", flat=True).first()
    kinds = [
        ("page_view", {"url": "https://www.leadfunnel.example/pricing"}),
        ("webinar_attended", {"webinar": "scoring-101", "minutes": 45}),
        ("content_download", {"asset": "ebook-funnel-metrics"}),
        ("email_click", {"campaign": "welcome", "url": "https://www.leadfunnel.example/features/scoring"}),
    ]
    latencies, queries, errors = [], [], 0
    for i in range(n + 20):
        kind, props = kinds[i % len(kinds)]
        body = {"lead": rng.randrange(1, max_id + 1), "type": kind, "properties": props}
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.post("/api/v1/interactions/", body, content_type="application/json")
            elapsed = time.perf_counter() - started
        if response.status_code not in (200, 201):
            errors += 1
            if errors == 1:
                print("incremental: first error:", response.status_code, response.content[:300])
        if i >= 20:  # warm-up
            latencies.append(elapsed)
            queries.append(len(ctx.captured_queries))
    return latencies, queries, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--workers", type=int, default=None, help="recompute_scores --workers (default: the command's own default)."
    )
    parser.add_argument("--single", type=int, default=200, help="How many single interaction POSTs to time.")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    name = f"rescore {args.leads // 1000}k/{args.interactions // 1000}k"
    setup_django(DB)  # connects lazily, after the database is made
    if not module_has("scoring.services", "scoring_recompute_all"):
        record(name, "NOT RUN: scoring.services.scoring_recompute_all does not exist yet")
        return 1
    seeded_db(DB, args.leads, args.interactions)
    flush_redis()
    try:
        cmd = [PY, str(ROOT / "manage.py"), "recompute_scores"]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        code, elapsed, samples, output = run_sampled(cmd, env_for(DB))
        print(output.strip())
        if code != 0:
            record(name, f"FAIL: recompute_scores exited {code}: {output.strip()[-300:]}")
            return 1
        peak, early, late, flat = memory_shape(samples, elapsed)
        keep_as_scored_template(args.leads, args.interactions)

        from django.db.models import Max

        from leads.models import Lead

        stats = Lead.objects.aggregate(updated=Max("score_updated_at"))
        scored = Lead.objects.filter(score__gt=0).count()
        try:
            from scoring.models import ScoreContribution

            contributions = ScoreContribution.objects.count()
        except ImportError:
            contributions = -1
        latencies, queries, errors = incremental(args.single)
    finally:
        flush_redis()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_db(DB)

    ms = [x * 1000 for x in latencies]
    passed = elapsed < 60 and flat and errors == 0
    mib = 2**20
    record(
        name,
        f"full recompute {elapsed:.1f}s wall (target < 60s), {getattr(run_sampled, 'cpu_seconds', 0.0):.1f}s CPU "
        f"in the recompute process and its workers (PostgreSQL's share not included), peak RSS {peak / mib:.0f} MiB, "
        f"RSS 20-40% {early / mib:.0f} MiB -> last 20% {late / mib:.0f} MiB ({'flat' if flat else 'GROWS'}), "
        f"{scored} leads with score > 0, {contributions} contributions, last score_updated_at {stats['updated']:%H:%M:%S} | "
        f"single POST /api/v1/interactions/ x{len(ms)}: p50 {percentile(ms, 50):.1f}ms p95 {percentile(ms, 95):.1f}ms "
        f"max {max(ms):.1f}ms, queries {min(queries)}-{max(queries)}, errors {errors} | {'PASS' if passed else 'FAIL'}",
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

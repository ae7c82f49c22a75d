"""Intake over HTTP: the public form endpoint against a bare one-upsert Django view, same gunicorn, same run.

    .venv/bin/python bench/intake.py [--duration 30] [--connections 16]

gunicorn (2 x cores sync workers, DEBUG off, INTAKE_RATE_LIMIT=off) on PostgreSQL and Redis;
wrk on 127.0.0.1 (`apt-get install -y wrk`) posts a realistic JSON payload with a distinct
email per request to POST /api/v1/forms/<slug>/submit/ and then to the baseline
POST /bench/baseline/submit/. Target: app/baseline requests-per-second ratio >= 0.5, 0 errors,
every 201 stored.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Gunicorn, drop_db, flush_redis, migrated_db, record, setup_django

DB = "lf_bench_intake"
FORM_SLUG = "bench-intake"
BASELINE_PATH = "/bench/baseline/submit/"


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
    return data


def probe(url: str) -> int:
    body = json.dumps({"email": "probe@bench-probe.example", "first_name": "Probe"}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def fmt(d: dict) -> str:
    return (
        f"{d['rps']:.0f} req/s p50 {d['p50_us'] / 1000:.1f}ms p95 {d['p95_us'] / 1000:.1f}ms "
        f"p99 {d['p99_us'] / 1000:.1f}ms errors {d['errors']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("intake: wrk is not installed; run `apt-get install -y wrk` (see bench/README.md)")
        return 2

    migrated_db(DB)
    setup_django(DB)
    from django.db import connection

    from bench.baseline import TABLE, ensure_table
    from leads.models import Form, FormSubmission, Lead

    ensure_table(connection)
    Form.objects.create(slug=FORM_SLUG, name="Benchmark form", kind="contact", channel="inbound", channel_weight=5)
    connection.close()
    flush_redis()
    nonce = str(int(time.time()))
    try:
        with Gunicorn(DB) as server:
            app_url = f"{server.base}/api/v1/forms/{FORM_SLUG}/submit/"
            base_url = server.base + BASELINE_PATH
            status = probe(app_url)
            if status != 201:
                record(
                    "intake-http",
                    f"NOT RUN: POST /api/v1/forms/{FORM_SLUG}/submit/ answered {status}, not 201 (intake not available)",
                )
                return 1
            assert probe(base_url) == 201
            for url in (app_url, base_url):
                wrk(url, duration=args.warmup, connections=args.connections, prefix=f"warm{nonce}")
            app = wrk(app_url, duration=args.duration, connections=args.connections, prefix=f"app{nonce}")
            base = wrk(base_url, duration=args.duration, connections=args.connections, prefix=f"base{nonce}")
            log = server.log_path
        time.sleep(0.5)
        stored_app = Lead.objects.filter(email__startswith=f"app{nonce}-").count()
        stored_subs = FormSubmission.objects.filter(lead__email__startswith=f"app{nonce}-").count()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE email LIKE %s", [f"base{nonce}-%"])
            stored_base = cursor.fetchone()[0]
        tracebacks = log.read_text(errors="replace").count("Traceback")
    finally:
        connection.close()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    ratio = app["rps"] / base["rps"] if base["rps"] else 0.0
    # A request still in flight when wrk stops may be stored without being counted, so at most
    # `connections` more rows than 201s; fewer rows than 201s would be a lost lead.
    app_ok = app["created"] <= stored_app <= app["created"] + args.connections and stored_subs >= app["created"]
    base_ok = base["created"] <= stored_base <= base["created"] + args.connections
    passed = ratio >= 0.5 and app["errors"] == 0 and app_ok and base_ok and tracebacks == 0
    record(
        "intake-http",
        f"app {fmt(app)} | baseline {fmt(base)} | ratio {ratio:.2f} (target >= 0.50) | "
        f"201s stored: app {stored_app} leads/{stored_subs} submissions for {app['created']} x 201, "
        f"baseline {stored_base} for {base['created']} | server tracebacks {tracebacks} | "
        f"{args.connections} clients x {args.duration}s, {Gunicorn.__name__} workers=2xcores | "
        f"{'PASS' if passed else 'FAIL'}",
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run every LeadFunnel benchmark, one after another (`make bench`).

Each benchmark is its own process with a time limit; each prints one summary line
and appends it to bench/RESULTS.md. A benchmark whose feature is not there yet
says so in its line. Exit status: 0 when every benchmark met its target.

    .venv/bin/python bench/run_all.py [--only intake,pages] [--quick]

``--quick`` runs the data-set benchmarks on 10k leads / 100k interactions (and the intake for 10 s a run)
instead of 100k / 1M (for trying the suite out, not for the service levels).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# name, script, extra args for --quick, time limit in seconds
BENCHMARKS = [
    # The full rescore runs first: the database it leaves is the scored data set the others copy.
    ("rescore", "rescore.py", ["--leads", "10000", "--interactions", "100000"], 1800),
    ("intake", "intake.py", ["--duration", "10"], 900),
    ("bulk", "bulk_interactions.py", ["--leads", "10000", "--interactions", "100000", "--duration", "10"], 1800),
    ("pages", "pages.py", ["--leads", "10000", "--interactions", "100000"], 3600),
    ("segments", "segments.py", ["--leads", "10000", "--interactions", "100000"], 1800),
    ("nurture", "nurture.py", ["--leads", "10000", "--interactions", "100000", "--enrollments", "10000"], 1800),
    # Back-test of a scoring model over the recorded history (runs once the endpoint exists).
    ("backtest", "backtest.py", ["--leads", "10000", "--interactions", "100000"], 1800),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run all LeadFunnel benchmarks.")
    parser.add_argument("--only", default="", help="Comma-separated names: " + ",".join(b[0] for b in BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    failures = []
    for name, script, quick_args, limit in BENCHMARKS:
        if wanted and name not in wanted:
            continue
        path = BENCH / script
        if not path.exists():
            print(f"== {name}: {script} is missing", flush=True)
            failures.append(name)
            continue
        cmd = [sys.executable, str(path), *(quick_args if args.quick else [])]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run(cmd, cwd=ROOT, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            print(f"== {name}: stopped after its {limit}s limit", flush=True)
            code = -1
        print(f"== {name}: exit {code} in {time.monotonic() - started:.0f}s", flush=True)
        if code != 0:
            failures.append(name)
    if failures:
        print("Benchmarks that did not meet their target or did not run: " + ", ".join(failures))
        return 1
    print("All benchmarks met their targets.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every benchmark shares: benchmark databases, the environment, gunicorn, results.

Benchmarks run against PostgreSQL on 127.0.0.1:5432 (user postgres) in their
own databases named ``lf_bench_*`` (created and dropped here), and Redis on
127.0.0.1:6379 database 9 (override with ``BENCH_PG`` / ``BENCH_REDIS_URL``).
Nothing listens anywhere but 127.0.0.1.
"""

import hashlib
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
RESULTS = ROOT / "bench" / "RESULTS.md"
LOG_DIR = ROOT / "var" / "bench"
SEED = 42
# The reference day for seeded data sets, so a template database stays valid for reuse.
AS_OF = os.environ.get("BENCH_AS_OF") or datetime.now(UTC).date().isoformat()

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- results -----------------------------------------------------------------------


def git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "leadfunnel", "leads", "scoring", "nurturing", "templates"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # "+wip": the app code measured had changes not yet committed on top of that commit.
    return sha + ("+wip" if dirty else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.0f}GiB"
    except ImportError:
        ram = "?"
    # The load average says whether something else shared the machine during the run.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"nproc={os.cpu_count()} RAM={ram} CPU={cpu} load1m={load:.1f}"


def record(benchmark: str, figures: str) -> str:
    """Print the one summary line of a benchmark and append it to bench/RESULTS.md
    (unless ``BENCH_NO_RECORD=1``: a trial run while tuning)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    line = f"- {stamp} | {git_commit()} | {machine()} | {benchmark} | {figures}"
    print(line, flush=True)
    if os.environ.get("BENCH_NO_RECORD", "") not in ("", "0"):
        return line
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return line


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- databases ---------------------------------------------------------------------


def _admin():
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    return conn


def db_url(name: str) -> str:
    return f"{PG}/{name}"


def db_exists(name: str) -> bool:
    with _admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cur.fetchone() is not None


def drop_db(name: str) -> None:
    assert name.startswith("lf_bench"), name
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def create_db(name: str, template: str | None = None) -> None:
    assert name.startswith("lf_bench"), name
    drop_db(name)
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        conn.close()


def list_dbs(prefix: str) -> list[str]:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def seed_fingerprint() -> str:
    """Changes when seed_bench changes, so a cached seeded database is rebuilt (new migrations are
    applied to each copy instead, see :func:`seeded_db`)."""
    path = ROOT / "leads" / "management" / "commands" / "seed_bench.py"
    return hashlib.sha1(path.read_bytes()).hexdigest()[:8]


def env_for(db: str, **extra: str) -> dict[str, str]:
    """The environment of a LeadFunnel process (server, worker, command) against a bench database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        DATABASE_URL=db_url(db),
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_TASK_ALWAYS_EAGER="0",
        DEBUG="false",
        SECRET_KEY="bench-" + hashlib.sha1(str(time.time()).encode()).hexdigest(),
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        INTAKE_RATE_LIMIT="off",
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DJANGO_SETTINGS_MODULE="bench.baseline_settings",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def manage(db: str, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env_for(db, **extra), check=check, text=True
    )


def migrated_db(name: str) -> str:
    create_db(name)
    manage(name, "migrate", "-v0")
    return name


def template_name(leads: int, interactions: int, seed: int = SEED) -> str:
    return f"lf_bench_tpl_{leads}_{interactions}_{seed}_{AS_OF.replace('-', '')}_{seed_fingerprint()}"


def scored_template_name(leads: int, interactions: int, seed: int = SEED) -> str:
    return template_name(leads, interactions, seed).replace("lf_bench_tpl_", "lf_bench_tps_", 1)


def seeded_template(leads: int, interactions: int, seed: int = SEED) -> str:
    """A migrated database holding ``seed_bench`` data, built once and reused as a template."""
    name = template_name(leads, interactions, seed)
    if db_exists(name):
        return name
    for stale in list_dbs(f"lf_bench_tpl_{leads}_{interactions}_{seed}_"):
        drop_db(stale)
    print(f"bench: building {name} (migrate + seed_bench, once)", flush=True)
    started = time.monotonic()
    building = name + "_building"
    migrated_db(building)
    manage(
        building,
        "seed_bench",
        "--leads",
        str(leads),
        "--interactions",
        str(interactions),
        "--seed",
        str(seed),
        "--as-of",
        AS_OF,
    )
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    finally:
        conn.close()
    print(f"bench: {name} ready in {time.monotonic() - started:.0f}s", flush=True)
    return name


def scored_template(leads: int, interactions: int, seed: int = SEED) -> str:
    """The seeded template after the scoring engine's full recompute (contributions, totals, real scores)."""
    name = scored_template_name(leads, interactions, seed)
    if db_exists(name):
        return name
    plain = seeded_template(leads, interactions, seed)
    for stale in list_dbs(f"lf_bench_tps_{leads}_{interactions}_{seed}_"):
        drop_db(stale)
    print(f"bench: building {name} (recompute_scores on a copy, once)", flush=True)
    started = time.monotonic()
    building = name + "_building"
    create_db(building, template=plain)
    manage(building, "migrate", "-v0")
    manage(building, "recompute_scores")
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    finally:
        conn.close()
    print(f"bench: {name} ready in {time.monotonic() - started:.0f}s", flush=True)
    return name


def seeded_db(name: str, leads: int, interactions: int, seed: int = SEED, scored: bool = False) -> str:
    """A fresh copy of the seeded template under ``name`` (a benchmark may change it freely).

    ``scored``: copy the template on which the full recompute already ran (real scores and breakdowns).
    """
    template = scored_template(leads, interactions, seed) if scored else seeded_template(leads, interactions, seed)
    create_db(name, template=template)
    # Migrations that landed after the template was built apply to the copy (a no-op otherwise).
    manage(name, "migrate", "-v0")
    return name


def setup_django(db: str, **extra: str) -> None:
    """Configure Django in this process against a bench database."""
    os.environ.update(env_for(db, **extra))
    import django

    django.setup()


def flush_redis() -> None:
    """Empty the benchmark's own Redis database (never another one)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    assert client.connection_pool.connection_kwargs.get("db", 0) != 0 or "BENCH_REDIS_URL" in os.environ
    client.flushdb()


# --- processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Gunicorn:
    """gunicorn serving LeadFunnel (plus the baseline view) on a free 127.0.0.1 port."""

    def __init__(self, db: str, workers: int | None = None, **extra_env: str) -> None:
        self.db = db
        self.workers = workers or 2 * (os.cpu_count() or 1)
        self.port = free_port()
        self.env = env_for(db, **extra_env)
        self.proc: subprocess.Popen | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"gunicorn-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Gunicorn":
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                str(Path(PY).parent / "gunicorn"),
                "leadfunnel.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "sync",
                "--backlog",
                "2048",
                "--timeout",
                "60",
                "--chdir",
                str(ROOT),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(self.base + "/healthz")
        except RuntimeError:
            self.__exit__(None, None, None)
            raise RuntimeError(
                "gunicorn did not start:\n" + self.log_path.read_text(errors="replace")[-3000:]
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def module_has(module: str, attr: str) -> bool:
    """Whether ``module.attr`` exists (features land one after another)."""
    import importlib

    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False

"""What every benchmark shares: benchmark databases, the environment, gunicorn, results.

Benchmarks run against PostgreSQL on 127.0.0.1:5432 (user postgres) in their
own databases named ``lf_bench_*`` (created and dropped here), and Redis on
127.0.0.1:6379 database 9 (override with ``BENCH_PG`` / ``BENCH_REDIS_URL``).
Nothing listens anywhere but 127.0.0.1.
"""

import atexit
import contextlib
import ctypes
import hashlib
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
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
    """Changes when seed_bench (the command or its loaders in leads/benchdata/) changes, so a cached
    seeded database is rebuilt (new migrations are applied to each copy instead, see :func:`seeded_db`)."""
    paths = [ROOT / "leads" / "management" / "commands" / "seed_bench.py"]
    paths += sorted((ROOT / "leads" / "benchdata").glob("*.py"))
    digest = hashlib.sha1()
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:8]


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


# Every server and worker a benchmark starts runs in its own process group (so stopping it stops
# its children too) and is registered here; the groups still alive are stopped at exit, on
# SIGTERM/SIGHUP (turned into SystemExit so `finally` blocks run) and, through PR_SET_PDEATHSIG,
# even when the benchmark itself is killed with SIGKILL (e.g. by run_all.py's time limit).
_LIVE: set[subprocess.Popen] = set()
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    os.setsid()
    # Not Linux: no PR_SET_PDEATHSIG, the atexit/signal clean-up below still applies.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(cmd: list[str], *, env: dict[str, str], log) -> subprocess.Popen:
    """Start ``cmd`` as the leader of a new session/process group, registered for clean-up."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_setup)
    _LIVE.add(proc)
    return proc


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group of ``proc`` (it leads its own, see :func:`spawn`: master and workers),
    then SIGKILL whatever is left of the group after ``timeout``."""
    _LIVE.discard(proc)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    # Workers of a master that already exited, or a master that did not stop in time.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)


def _stop_all() -> None:
    for proc in list(_LIVE):
        stop_group(proc, timeout=10)


def _on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


atexit.register(_stop_all)
if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(_sig, _on_signal)


class Gunicorn:
    """gunicorn on a free 127.0.0.1 port: LeadFunnel (plus the baseline view) by default.

    ``app`` / ``settings``: another WSGI application and settings module (the bare baseline).
    Both use ``workers`` (2 x cores by default) sync workers, so they are compared like for like.
    """

    def __init__(
        self,
        db: str,
        workers: int | None = None,
        *,
        app: str = "leadfunnel.wsgi:application",
        settings: str | None = None,
        ready_path: str = "/healthz",
        **extra_env: str,
    ) -> None:
        self.db = db
        self.app = app
        self.ready_path = ready_path
        self.workers = workers or 2 * (os.cpu_count() or 1)
        self.worker_class = "sync"
        self.port = free_port()
        if settings:
            extra_env["DJANGO_SETTINGS_MODULE"] = settings
        self.env = env_for(db, **extra_env)
        self.proc: subprocess.Popen | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"gunicorn-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Gunicorn":
        self.log = self.log_path.open("w")
        self.proc = spawn(
            [
                str(Path(PY).parent / "gunicorn"),
                self.app,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                self.worker_class,
                "--backlog",
                "2048",
                "--timeout",
                "60",
                "--chdir",
                str(ROOT),
            ],
            env=self.env,
            log=self.log,
        )
        try:
            # Any answer below 500 will do (a GET of the bare baseline's one POST URL answers 405).
            wait_http(self.base + self.ready_path)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise RuntimeError(
                "gunicorn did not start:\n" + self.log_path.read_text(errors="replace")[-3000:]
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.proc:
            stop_group(self.proc)
        self.log.close()

    def tracebacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Traceback")


class CeleryWorker:
    """One Celery worker as in production (`celery -A leadfunnel worker -Q events,nurture,bulk`), no beat,
    against the bench database and the bench's Redis database, with LeadFunnel's own settings."""

    def __init__(self, db: str, *, concurrency: int = 2, queues: str = "events,nurture,bulk") -> None:
        self.db = db
        self.concurrency = concurrency
        self.queues = queues
        self.node = f"bench-{os.getpid()}@{socket.gethostname()}"
        self.env = env_for(db, DJANGO_SETTINGS_MODULE="leadfunnel.settings")
        self.proc: subprocess.Popen | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"celery-{os.getpid()}.log"

    def __enter__(self) -> "CeleryWorker":
        self.log = self.log_path.open("w")
        self.proc = spawn(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "leadfunnel",
                "worker",
                "-Q",
                self.queues,
                "--concurrency",
                str(self.concurrency),
                "-n",
                self.node,
                # INFO would write a log line per task; warnings and errors are enough here.
                "--loglevel",
                "WARNING",
            ],
            env=self.env,
            log=self.log,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        from celery import Celery

        probe = Celery(broker=REDIS_URL)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("celery worker exited:\n" + self.log_path.read_text(errors="replace")[-3000:])
                if probe.control.ping(destination=[self.node], timeout=1.0):
                    return
            raise RuntimeError(f"celery worker {self.node} did not answer a ping within {timeout:.0f}s")
        finally:
            probe.close()

    def __exit__(self, *exc) -> None:
        if self.proc:
            stop_group(self.proc, timeout=20)
        self.log.close()

    def tracebacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Traceback")


def redis_queue_lengths(queues: str = "events,nurture,bulk") -> dict[str, int]:
    """Messages waiting in the bench's Redis database, per Celery queue."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {q: client.llen(q) for q in queues.split(",")}
    finally:
        client.close()


# --- score/stage latency ---------------------------------------------------------------

PENDING_TABLE = "scoring_pendingscore"


class PendingScores:
    """How long after a request's answer its leads' scores and stages reflect it.

    Definition (the deferred scoring queue): events waiting to be scored are rows of
    ``scoring_pendingscore`` (column ``lead_id``); a sample is *reflected* once no row holds any of
    its lead ids. Without that table scoring runs inside the request, so the latency is 0 by
    construction (``in_request``). One thread polls every ``interval`` seconds, on its own psycopg2
    connection, every sample still waiting, in one query.
    """

    def __init__(self, db: str, interval: float = 0.01) -> None:
        import psycopg2

        self.interval = interval
        self.conn = psycopg2.connect(db_url(db))
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [PENDING_TABLE])
            self.in_request = not cur.fetchone()[0]
        self.lock = threading.Lock()
        self.waiting: list[tuple[tuple[int, ...], float]] = []
        self.latencies: list[float] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pending-scores", daemon=True)
        self._thread.start()

    def watch(self, lead_ids, answered_at: float) -> None:
        """Time from ``answered_at`` (time.monotonic() at the answer) until none of ``lead_ids`` is pending."""
        ids = tuple(int(i) for i in lead_ids)
        if self.in_request:
            self.latencies.append(0.0)
            return
        with self.lock:
            self.waiting.append((ids, answered_at))

    def _run(self) -> None:
        if self.in_request:
            return
        with self.conn.cursor() as cur:
            while not self._stop.is_set():
                started = time.monotonic()
                with self.lock:
                    waiting = list(self.waiting)
                if waiting:
                    ids = sorted({i for sample, _ in waiting for i in sample})
                    cur.execute(f"SELECT DISTINCT lead_id FROM {PENDING_TABLE} WHERE lead_id = ANY(%s)", [ids])
                    pending = {row[0] for row in cur.fetchall()}
                    seen = time.monotonic()
                    self.polls += 1
                    done = [(s, t) for s, t in waiting if not pending.intersection(s)]
                    if done:
                        with self.lock:
                            for item in done:
                                self.waiting.remove(item)
                        self.latencies.extend(seen - t for _, t in done)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def backlog(self) -> int:
        if self.in_request:
            return 0
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {PENDING_TABLE}")
            return cur.fetchone()[0]

    def wait_drained(self, since: float | None = None, cap: float = 30.0) -> tuple[float | None, int]:
        """After the load: seconds from ``since`` (time.monotonic() when the load ended; now by default)
        until the pending table is empty (None if not within ``cap``), and the backlog at the first look.
        Uses a connection of its own so the sample poller keeps going meanwhile."""
        if self.in_request:
            return 0.0, 0
        import psycopg2

        started = time.monotonic() if since is None else since
        conn = psycopg2.connect(self.conn.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                first = None
                while True:
                    cur.execute(f"SELECT count(*) FROM {PENDING_TABLE}")
                    left = cur.fetchone()[0]
                    first = left if first is None else first
                    elapsed = time.monotonic() - started
                    if left == 0:
                        return elapsed, first
                    if elapsed >= cap:
                        return None, first
                    time.sleep(self.interval)
        finally:
            conn.close()

    def wait_samples(self, cap: float = 30.0) -> int:
        """Let the samples still waiting finish (up to ``cap`` s); the number still waiting after it."""
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            with self.lock:
                if not self.waiting:
                    return 0
            time.sleep(self.interval)
        with self.lock:
            return len(self.waiting)

    def take(self) -> tuple[list[float], int]:
        """The latencies measured so far and the samples still waiting; starts a new series."""
        with self.lock:
            latencies, self.latencies = self.latencies, []
            unfinished, self.waiting = len(self.waiting), []
        return latencies, unfinished

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.conn.close()

    @staticmethod
    def describe(latencies: list[float], unfinished: int, in_request: bool) -> str:
        if in_request:
            return f"score/stage in the request ({len(latencies)} samples, no {PENDING_TABLE} table)"
        ms = [x * 1000 for x in latencies]
        text = (
            f"score/stage after the answer p50 {percentile(ms, 50):.0f}ms p95 {percentile(ms, 95):.0f}ms "
            f"max {max(ms, default=float('nan')):.0f}ms over {len(ms)} samples"
        )
        if unfinished:
            text += f", {unfinished} samples not reflected within the wait"
        return text


def module_has(module: str, attr: str) -> bool:
    """Whether ``module.attr`` exists (features land one after another)."""
    import importlib

    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False

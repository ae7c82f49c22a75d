"""Shared test world: the actors (marketer, two reps, admin, anonymous), API
clients for each, and real services started per test session when needed
(a private redis-server on its own port, a real Celery worker process)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scoring import services as scoring_services
from scoring.models import ScoringRule
from scoring.selectors import scoring_settings_get
from scoring.services import configuration as scoring_configuration
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.IS_POSTGRES
    require = os.environ.get("LEADFUNNEL_REQUIRE_SERVICES") == "1"
    have_redis = shutil.which("redis-server") is not None
    have_chromium = Path("/usr/bin/chromium").exists()
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            if require:
                raise pytest.UsageError("LEADFUNNEL_REQUIRE_SERVICES=1 but the suite is not on PostgreSQL")
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL"))
        if ("redis" in item.keywords or "worker" in item.keywords) and not have_redis:
            if require:
                raise pytest.UsageError("LEADFUNNEL_REQUIRE_SERVICES=1 but redis-server is not installed")
            item.add_marker(pytest.mark.skip(reason="needs redis-server"))
        if "browser" in item.keywords and not have_chromium:
            item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium (apt-get install chromium)"))


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# --- actors -------------------------------------------------------------------


def _in_group(user, name: str):
    # get_or_create: a transactional test's flush removes the groups the migration made.
    user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def marketer(db):
    return _in_group(UserFactory(username="maya"), "marketer")


@pytest.fixture
def sales_rep(db):
    return _in_group(UserFactory(username="sam"), "sales")


@pytest.fixture
def other_rep(db):
    return _in_group(UserFactory(username="sasha"), "sales")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", is_superuser=True, is_staff=True)


def _client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def marketer_client(marketer) -> APIClient:
    return _client_for(marketer)


@pytest.fixture
def sales_client(sales_rep) -> APIClient:
    return _client_for(sales_rep)


@pytest.fixture
def other_rep_client(other_rep) -> APIClient:
    return _client_for(other_rep)


@pytest.fixture
def admin_client_api(admin_user) -> APIClient:
    return _client_for(admin_user)


@pytest.fixture
def client_for():
    return _client_for


# --- real services ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server on its own port, so tests may stop and restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def test_database_url() -> str:
    """The URL of the test database pytest-django created, for worker subprocesses."""
    from django.db import connection

    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{params['NAME']}"


class CeleryProcess:
    def __init__(self, redis_url: str, kind: str = "worker", extra_env: dict | None = None) -> None:
        self.redis_url = redis_url
        self.kind = kind
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"test-celery-{kind}-{os.getpid()}-{free_port()}.log"

    def start(self, *args: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            DATABASE_URL=test_database_url(),
            CELERY_BROKER_URL=self.redis_url,
            REDIS_URL=self.redis_url,
            CELERY_TASK_ALWAYS_EAGER="0",
            DJANGO_SETTINGS_MODULE="leadfunnel.settings",
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(self.log_path.with_suffix(".mail")),
            CONN_MAX_AGE="0",
            **self.extra_env,
        )
        if self.kind == "worker":
            cmd = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "leadfunnel",
                "worker",
                "-Q",
                "events,nurture,bulk",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                *args,
            ]
        else:
            cmd = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "leadfunnel",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.log_path.with_suffix(".beat")),
                *args,
            ]
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        needle = "ready." if self.kind == "worker" else "beat: Starting"
        while time.time() < deadline:
            if needle in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self.kind} died:\n{self.output()}")
            time.sleep(0.1)
        raise RuntimeError(f"celery {self.kind} not ready:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if hasattr(self, "log"):
            self.log.close()


@pytest.fixture
def celery_worker_factory(redis_server):
    """Start real Celery workers (or beat) on the private Redis, against the test database.

    The test must use ``@pytest.mark.django_db(transaction=True)`` so its rows are
    committed and visible to the worker process.
    """
    started: list[CeleryProcess] = []

    def start(*args: str, kind: str = "worker", extra_env: dict | None = None) -> CeleryProcess:
        process = CeleryProcess(redis_server.url, kind=kind, extra_env=extra_env)
        process.start(*args)
        process.wait_ready()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def celery_app_on(redis_server, settings):
    """Point this process's Celery app at the private Redis and stop running tasks eagerly."""
    from leadfunnel.celery import app

    old = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    _point_celery_at(app, redis_server.url, {"socket_connect_timeout": 1, "max_retries": 1})
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield app
    app.conf.task_always_eager = old[1]
    _point_celery_at(app, old[0], old[2])


def _point_celery_at(app, url: str, transport_options: dict) -> None:
    """Switch the broker of an already-used Celery app: drop every cached connection and producer."""
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options
    from kombu import pools

    app.pool.force_close_all()
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def wait_until(predicate, timeout: float = 20, interval: float = 0.1, message: str = "condition not met"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message}")


# --- scoring rules -----------------------------------------------------------------------------


@pytest.fixture
def blank_model(db):
    """The settings row with every default rule inactive, so a test sees only its own rules."""
    scoring_settings_get()
    ScoringRule.objects.update(active=False)
    scoring_configuration._bump_version()
    return scoring_settings_get()


@pytest.fixture
def make_rule(blank_model):
    def make(**data):
        data.setdefault("name", f"rule {ScoringRule.objects.count() + 1}")
        data.setdefault("dimension", "engagement")
        data.setdefault("source", "interaction")
        return scoring_services.rule_create(recompute=False, **data)

    return make

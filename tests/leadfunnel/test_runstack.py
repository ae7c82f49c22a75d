"""`make run` (manage.py runstack): Ctrl-C stops web, worker and beat cleanly, without error lines."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow]  # starts gunicorn, a Celery worker and beat (no Redis: the embedded default)


def _wait_for(predicate, *, timeout: float, what: str, output) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n{output()}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_ctrl_c_stops_the_stack_cleanly_with_no_error_lines(tmp_path):
    port = free_port()
    # The embedded default: SQLite and the filesystem broker under a private var dir.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL", "CELERY_TASK_ALWAYS_EAGER"}
    }
    env.update(LEADFUNNEL_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="leadfunnel.settings", DEBUG="true")
    log = tmp_path / "runstack.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--no-seed", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the test can always kill all of it
        )
    output = log.read_text
    try:
        _wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), timeout=180, what="/healthz", output=output)
        # The worker's pool processes exist once it says it is ready; they are what used to log errors.
        _wait_for(lambda: "ready." in output(), timeout=120, what="the worker", output=output)
        _wait_for(lambda: "beat: Starting" in output(), timeout=60, what="beat", output=output)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    text = output()
    assert code == 0, text
    assert "Stopped web, worker and beat." in text
    assert "ERROR" not in text, text
    assert "Traceback" not in text, text

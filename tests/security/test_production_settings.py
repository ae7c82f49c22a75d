"""Production settings (DEBUG off, SECRET_KEY from the environment): `check --deploy` is clean,
responses carry the security headers, cookies are secure, HTTP redirects to HTTPS with HSTS."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.faults]

PROBE = r"""
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
out = {}
client = Client()
plain = client.get("/accounts/login/")
out["http"] = [plain.status_code, plain.get("Location", "")]
secure = client.get("/accounts/login/", secure=True)
out["status"] = secure.status_code
out["headers"] = {k: v for k, v in secure.headers.items()}
csrf = secure.cookies.get("csrftoken")
out["csrf_cookie"] = {"secure": bool(csrf and csrf["secure"]), "samesite": csrf["samesite"] if csrf else ""}
from django.conf import settings
out["session_cookie_secure"] = settings.SESSION_COOKIE_SECURE
out["session_cookie_httponly"] = settings.SESSION_COOKIE_HTTPONLY
out["debug"] = settings.DEBUG
print("PROBE" + json.dumps(out))
"""


def production_env(**extra) -> dict:
    # A production process has none of the test run's relaxations (e.g. the browser tests'
    # DJANGO_ALLOW_ASYNC_UNSAFE), so they are not inherited here.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DEBUG="false",
        SECRET_KEY="prod-like-" + "k8Zq" * 15,
        ALLOWED_HOSTS="testserver,leadfunnel.example.com",
        DJANGO_SETTINGS_MODULE="leadfunnel.settings",
        LEADFUNNEL_VAR_DIR=str(ROOT / "var" / "prod-probe"),
        **extra,
    )
    return env


def test_manage_py_check_deploy_is_clean_with_production_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_responses_carry_security_headers_secure_cookies_and_hsts():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("PROBE")), None)
    assert line, result.stdout + result.stderr
    out = json.loads(line[len("PROBE") :])
    assert out["debug"] is False
    assert out["http"][0] == 301 and out["http"][1].startswith("https://")
    headers = out["headers"]
    assert out["status"] == 200
    assert int(headers["Strict-Transport-Security"].split("max-age=")[1].split(";")[0]) >= 31_536_000
    assert "includeSubDomains" in headers["Strict-Transport-Security"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert out["csrf_cookie"]["secure"] is True
    assert out["session_cookie_secure"] is True and out["session_cookie_httponly"] is True


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    env.pop("SECRET_KEY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr

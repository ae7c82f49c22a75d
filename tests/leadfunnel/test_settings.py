"""Settings come from the environment, with safe fallbacks and loud errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = (
    "import json, django; from django.conf import settings; django.setup();"
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'],"
    " 'name': str(settings.DATABASES['default']['NAME']), 'broker': settings.CELERY_BROKER_URL,"
    " 'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS, 'email': settings.EMAIL_BACKEND}))"
)


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "REDIS_URL",
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "EMAIL_BACKEND",
        }
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="leadfunnel.settings")
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_with_nothing_configured_it_uses_sqlite_under_var_and_a_filesystem_broker():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"].endswith("var/leadfunnel.sqlite3")
    assert values["broker"] == "filesystem://"
    assert values["debug"] is True


def test_database_url_and_redis_url_select_postgresql_and_redis():
    result = load_settings(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/leadfunnel", REDIS_URL="redis://127.0.0.1:6379/3"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "leadfunnel"
    assert values["broker"] == "redis://127.0.0.1:6379/3"


def test_celery_broker_url_wins_over_redis_url():
    result = load_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/5", REDIS_URL="redis://127.0.0.1:6379/3")
    assert json.loads(result.stdout)["broker"] == "redis://127.0.0.1:6379/5"


def test_it_refuses_to_start_without_secret_key_when_debug_is_off():
    result = load_settings(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_start_with_a_secret_key_and_hosts():
    result = load_settings(DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="crm.example.com,www.example.com")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["debug"] is False
    assert values["hosts"] == ["crm.example.com", "www.example.com"]


def test_a_malformed_boolean_is_refused_with_the_variable_name():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_a_malformed_database_url_is_refused():
    result = load_settings(DATABASE_URL="nosuchdb://x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_email_backend_comes_from_the_environment():
    result = load_settings(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend")
    assert json.loads(result.stdout)["email"] == "django.core.mail.backends.filebased.EmailBackend"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"RETENTION_ANONYMOUS_DAYS": "ninety"}, "RETENTION_ANONYMOUS_DAYS must be an integer"),
        ({"RETENTION_ANONYMOUS_DAYS": "0"}, "RETENTION_ANONYMOUS_DAYS must be 1 or more"),
        ({"TRACK_RATE_LIMIT": "lots"}, "TRACK_RATE_LIMIT must be a rate"),
    ],
)
def test_malformed_tracking_settings_are_refused_with_the_variable_name(env, needle):
    result = load_settings(**env)
    assert result.returncode != 0
    assert needle in result.stderr


def test_tracking_settings_come_from_the_environment():
    probe = "import django; from django.conf import settings; django.setup(); print(settings.RETENTION_ANONYMOUS_DAYS, settings.TRACK_RATE_LIMIT)"
    env = {
        **os.environ,
        "RETENTION_ANONYMOUS_DAYS": "30",
        "TRACK_RATE_LIMIT": "10/s",
        "DJANGO_SETTINGS_MODULE": "leadfunnel.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["30", "10/s"], result.stderr

"""Database faults: a web process whose PostgreSQL is unreachable answers 503 with
Retry-After (never 201), and a failure inside the intake transaction leaves nothing behind."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from django.db import OperationalError
from django.test import Client

from leadfunnel.models import OutboxMessage
from leads.models import Company, FormSubmission, Interaction, Lead, StageTransition
from tests.conftest import ROOT, free_port
from tests.factories import FormFactory, LeadFactory

pytestmark = [pytest.mark.faults]


@pytest.fixture(scope="module")
def web_without_database(tmp_path_factory):
    """gunicorn serving LeadFunnel with DATABASE_URL pointing at a port nobody listens on."""
    dead_port, port = free_port(), free_port()
    var_dir = tmp_path_factory.mktemp("var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REDIS", "CELERY", "CACHE"))}
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{dead_port}/leadfunnel",
        DJANGO_SETTINGS_MODULE="leadfunnel.settings",
        LEADFUNNEL_VAR_DIR=str(var_dir),
        DEBUG="false",
        SECRET_KEY="test-only-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        CONN_MAX_AGE="0",
    )
    log = open(var_dir / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "leadfunnel.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "-t", "30"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            requests.get(f"{base}/healthz", timeout=5)
            break
        except requests.RequestException:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    else:
        proc.kill()
    if proc.poll() is not None:
        log.close()
        raise RuntimeError((var_dir / "gunicorn.log").read_text())
    yield base
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def _assert_503(response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert int(response.headers["Retry-After"]) > 0


def test_public_intake_answers_503_json_with_retry_after_when_postgresql_is_down(web_without_database):
    for n in range(20):
        response = requests.post(
            f"{web_without_database}/api/v1/forms/contact/submit/",
            json={"email": f"visitor{n}@acme.example", "first_name": "Vi"},
            timeout=10,
        )
        _assert_503(response)
        assert response.json()["code"] == "database_unavailable"
        assert response.json()["message"]


def test_authenticated_api_and_dashboard_answer_503_when_postgresql_is_down(web_without_database):
    api = requests.get(
        f"{web_without_database}/api/v1/leads/", headers={"Authorization": "Token " + "a" * 40}, timeout=10
    )
    _assert_503(api)
    assert api.json()["code"] == "database_unavailable"
    # A plain Django view (not DRF) goes through the middleware: a page, still 503.
    page = requests.get(f"{web_without_database}/accounts/login/", timeout=10)
    assert page.status_code in (200, 503)  # the login page itself needs no database
    login = requests.post(
        f"{web_without_database}/accounts/login/", data={"username": "a", "password": "b"}, timeout=10
    )
    assert login.status_code in (403, 503)  # CSRF refuses first, or the database is missing
    ready = requests.get(f"{web_without_database}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "failed"
    assert requests.get(f"{web_without_database}/healthz", timeout=10).status_code == 200


@pytest.mark.django_db
def test_a_dashboard_page_answers_503_not_500_when_the_database_fails(marketer, monkeypatch):
    import leads.dashboard

    def broken(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(leads.dashboard, "leads_page", broken)
    client = Client(raise_request_exception=False)
    client.force_login(marketer)
    response = client.get("/leads/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"briefly unavailable" in response.content


# --- nothing half-written ------------------------------------------------------------------


def _nothing_stored() -> None:
    assert Lead.objects.count() == 0
    assert FormSubmission.objects.count() == 0
    assert Interaction.objects.count() == 0
    assert StageTransition.objects.count() == 0
    assert Company.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("failure", "status"),
    [(RuntimeError("scoring crashed"), 500), (OperationalError("connection lost mid-transaction"), 503)],
)
def test_a_failure_after_the_lead_insert_leaves_no_lead_submission_or_interaction(monkeypatch, failure, status):
    from leads.services import qualification

    FormFactory(slug="contact")

    def explode(**kwargs):
        raise failure

    monkeypatch.setattr(qualification, "score_leads", explode)
    client = Client(raise_request_exception=False)
    response = client.post(
        "/api/v1/forms/contact/submit/",
        data=json.dumps({"email": "half@initech.example", "first_name": "Half", "company": "Initech"}),
        content_type="application/json",
    )
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    _nothing_stored()


@pytest.mark.django_db
def test_a_failure_while_scoring_a_recorded_interaction_stores_no_interaction(monkeypatch, marketer_client):
    from leads.services import qualification

    lead = LeadFactory()
    before = Interaction.objects.count()

    def explode(**kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(qualification, "score_leads", explode)
    one = marketer_client.post("/api/v1/interactions/", {"email": lead.email, "type": "page_view"}, format="json")
    bulk = marketer_client.post(
        "/api/v1/interactions/bulk/",
        {"events": [{"email": lead.email, "type": "page_view"}, {"email": "new@globex.example", "type": "page_view"}]},
        format="json",
    )
    assert one.status_code == 503 and one["Retry-After"]
    assert bulk.status_code == 503 and bulk["Retry-After"]
    assert Interaction.objects.count() == before
    assert not Lead.objects.filter(email="new@globex.example").exists()
    assert OutboxMessage.objects.count() == 0

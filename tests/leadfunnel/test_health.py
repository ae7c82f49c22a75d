import pytest
from django.test import override_settings

from tests.conftest import _point_celery_at


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_broker_answer(client, monkeypatch):
    monkeypatch.setattr("leadfunnel.views.check_broker", lambda: None)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client):
    from leadfunnel.celery import app

    old = (app.conf.broker_url, app.conf.broker_transport_options)
    _point_celery_at(app, "redis://127.0.0.1:1/0", {"socket_connect_timeout": 1, "max_retries": 1})  # nothing on port 1
    try:
        response = client.get("/readyz")
    finally:
        _point_celery_at(app, *old)
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "failed"}
    assert "broker unreachable" in body["message"]
    assert response["Retry-After"]


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client, monkeypatch):
    monkeypatch.setattr("leadfunnel.views.check_broker", lambda: None)
    monkeypatch.setattr("leadfunnel.views.check_database", lambda: "OperationalError: connection refused")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failed"
    assert "database unreachable" in response.json()["message"]


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_is_ok_against_a_real_redis(client, redis_server):
    from leadfunnel.celery import app

    old = (app.conf.broker_url, app.conf.broker_transport_options)
    _point_celery_at(app, redis_server.url, {"socket_connect_timeout": 1, "max_retries": 1})
    try:
        response = client.get("/readyz")
    finally:
        _point_celery_at(app, *old)
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_probes_answer_over_plain_http_when_https_redirect_is_on(client, monkeypatch):
    """Load balancers and orchestrators probe over HTTP; everything else still goes to HTTPS."""
    monkeypatch.setattr("leadfunnel.views.check_broker", lambda: None)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    assert client.get("/healthz/x").status_code == 301  # exempt means exactly the probes

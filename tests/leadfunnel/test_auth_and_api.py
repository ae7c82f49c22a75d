import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.authtoken.models import Token


@pytest.mark.django_db
def test_role_groups_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"marketer", "sales"}


@pytest.mark.django_db
def test_anonymous_api_calls_get_a_401_json_message(anon_client):
    response = anon_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["message"] == "Authentication credentials were not provided."


@pytest.mark.django_db
def test_a_token_authenticates_and_reports_roles(marketer_client):
    response = marketer_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "maya"
    assert response.json()["roles"] == ["marketer"]


@pytest.mark.django_db
def test_a_wrong_token_is_refused(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anon_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert "Invalid token" in response.json()["message"]


@pytest.mark.django_db
def test_drf_create_token_makes_a_working_token(sales_rep, anon_client, capsys):
    call_command("drf_create_token", "sam")
    key = Token.objects.get(user=sales_rep).key
    assert key in capsys.readouterr().out
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon_client.get("/api/v1/me/").json()["roles"] == ["sales"]


@pytest.mark.django_db
def test_the_session_login_page_is_styled_and_logs_in(client, marketer):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b"LeadFunnel" in page.content and b'name="username"' in page.content
    response = client.post("/accounts/login/", {"username": "maya", "password": "pass-word-123"})
    assert response.status_code == 302
    assert client.get("/api/v1/me/").json()["username"] == "maya"


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404(marketer_client):
    response = marketer_client.get("/api/v1/does-not-exist/")
    assert response.status_code == 404
    assert response.json()["message"] == "Not found."


@pytest.mark.django_db
def test_method_not_allowed_is_json(marketer_client):
    response = marketer_client.delete("/api/v1/me/")
    assert response.status_code == 405
    assert "not allowed" in response.json()["message"]


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_passwords_once(capsys):
    call_command("seed_demo", "--users-only")
    first = capsys.readouterr().out
    assert "marketer" in first and "sales2" in first and "admin" in first
    call_command("seed_demo", "--users-only")
    second = capsys.readouterr().out
    assert "already exist" in second
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    assert users.filter(username__in=["admin", "marketer", "sales", "sales2"]).count() == 4
    assert users.get(username="admin").is_superuser
    assert users.get(username="sales2").groups.filter(name="sales").exists()

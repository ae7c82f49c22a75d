import pytest

PAGES = ["/", "/leads/", "/queue/", "/pipeline/", "/forms/", "/forms/new/", "/scoring/", "/sequences/"]
MARKETER_ONLY = ["/forms/", "/forms/new/", "/scoring/", "/sequences/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_a_rep_opening_the_home_page_lands_on_the_queue(rep_web):
    response = rep_web.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/queue/"


@pytest.mark.django_db
@pytest.mark.parametrize("path", MARKETER_ONLY)
def test_a_rep_gets_the_styled_403_page_on_marketing_pages(rep_web, path):
    response = rep_web.get(path)
    assert response.status_code == 403
    body = response.content.decode()
    assert "<h1>403</h1>" in body and "This page is for marketers" in body
    # The page keeps the rep's own navigation, without the marketing entries.
    assert 'href="/queue/"' in body and 'href="/scoring/"' not in body


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/queue/", "/pipeline/"])
def test_a_marketer_without_the_sales_role_gets_403_on_sales_pages(marketer_web, path):
    assert marketer_web.get(path).status_code == 403


@pytest.mark.django_db
def test_a_user_without_any_role_is_told_to_ask_an_admin(browser_for):
    from tests.factories import UserFactory

    response = browser_for(UserFactory(username="nobody")).get("/")
    assert response.status_code == 403
    assert "ask an admin" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/leads/", "/queue/", "/pipeline/", "/forms/", "/scoring/", "/sequences/"])
def test_an_admin_sees_every_page(admin_user, browser_for, path):
    assert browser_for(admin_user).get(path).status_code == 200


@pytest.mark.django_db
def test_forms_posted_without_a_csrf_token_are_refused(marketer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        "/forms/new/", {"name": "Contact", "slug": "contact", "kind": "contact", "channel": "inbound"}
    )
    assert response.status_code == 403
    assert "Reload the page" in response.content.decode()
    from leads.models import Form

    assert not Form.objects.exists()

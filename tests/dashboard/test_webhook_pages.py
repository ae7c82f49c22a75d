"""The webhook pages (admins only): subscriptions, the delivery log, redelivery, secret rotation."""

import hashlib
import hmac
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadfunnel.models import AuditEvent, WebhookDelivery, WebhookSubscription
from leadfunnel.webhooks import webhook_sign

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hooks/leadfunnel"


@pytest.fixture(autouse=True)
def private_urls(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def admin_web(admin_user, browser_for):
    return browser_for(admin_user)


def subscription(**fields) -> WebhookSubscription:
    values = {"url": URL, "secret": "s" * 32, "events": ["lead.mql"], **fields}
    return WebhookSubscription.objects.create(**values)


def delivery(sub, **fields) -> WebhookDelivery:
    values = {"event": "lead.mql", "dedupe_key": f"k{WebhookDelivery.objects.count()}", "payload": {"lead_id": 1}}
    return WebhookDelivery.objects.create(subscription=sub, **{**values, **fields})


def shown_secret(html: str) -> str:
    return re.search(r'id="webhook-secret"><code>([^<]+)</code>', html).group(1)


@pytest.mark.parametrize(("who", "status"), [("admin_user", 200), ("marketer", 403), ("sales_rep", 403), (None, 302)])
def test_only_admins_open_the_webhook_pages(request, browser_for, client, who, status):
    web = browser_for(request.getfixturevalue(who)) if who else client
    sub = subscription()
    sent = delivery(sub)
    for url in ("/webhooks/", "/webhooks/new/", f"/webhooks/{sub.pk}/"):
        response = web.get(url)
        assert response.status_code == status, url
        if who is None:
            assert response["Location"].startswith("/accounts/login/")
    if who != "admin_user":
        for url in (
            f"/webhooks/{sub.pk}/rotate-secret/",
            f"/webhooks/deliveries/{sent.pk}/redeliver/",
            f"/webhooks/{sub.pk}/delete/",
        ):
            assert web.post(url).status_code == status, url
        body = {"url": "https://evil.example/", "events": ["lead.created"], "active": "on"}
        assert web.post("/webhooks/new/", body).status_code == status
        assert web.post(f"/webhooks/{sub.pk}/", body).status_code == status
        sub.refresh_from_db()
        assert (sub.secret, sub.url, WebhookSubscription.objects.count()) == ("s" * 32, URL, 1)
        assert WebhookDelivery.objects.count() == 1


def test_an_admin_creates_a_subscription_and_sees_its_secret_once(admin_web, admin_user):
    body = {"url": URL, "description": "CRM sync", "events": ["lead.mql", "lead.sql"], "active": "on"}
    response = admin_web.post("/webhooks/new/", body)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    secret = shown_secret(response.content.decode())
    sub = WebhookSubscription.objects.get()
    assert (sub.url, sub.description, sub.events, sub.active) == (URL, "CRM sync", ["lead.mql", "lead.sql"], True)
    assert sub.secret == secret and len(secret) >= 32
    assert sub.created_by == admin_user
    # Never shown again.
    assert secret not in admin_web.get(f"/webhooks/{sub.pk}/").content.decode()
    assert secret not in admin_web.get("/webhooks/").content.decode()


def test_a_subscription_needs_an_event_and_a_web_url(admin_web, settings):
    none_ticked = admin_web.post("/webhooks/new/", {"url": URL, "active": "on"})
    assert none_ticked.status_code == 400 and "Choose at least one event." in none_ticked.content.decode()
    bad_url = admin_web.post("/webhooks/new/", {"url": "ftp://files.example/x", "events": ["lead.mql"]})
    assert bad_url.status_code == 400 and "absolute http:// or https:// URL" in bad_url.content.decode()
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    private = admin_web.post("/webhooks/new/", {"url": URL, "events": ["lead.mql"]})
    assert private.status_code == 400 and "private, loopback or reserved" in private.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_an_admin_edits_and_deletes_a_subscription(admin_web):
    sub = subscription(active=False, consecutive_failures=15)
    body = {"url": URL + "/v2", "description": "", "events": ["lead.created", "lead.customer"], "active": "on"}
    response = admin_web.post(f"/webhooks/{sub.pk}/", body)
    assert response.status_code == 302
    sub.refresh_from_db()
    assert (sub.url, sub.events, sub.active, sub.consecutive_failures) == (
        URL + "/v2",
        ["lead.created", "lead.customer"],
        True,
        0,
    )
    assert sub.secret == "s" * 32  # editing never touches the secret
    response = admin_web.post(f"/webhooks/{sub.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/webhooks/"
    assert not WebhookSubscription.objects.exists()


def test_rotating_the_secret_shows_the_new_one_and_signs_with_it(admin_web, admin_user):
    sub = subscription()
    response = admin_web.post(f"/webhooks/{sub.pk}/rotate-secret/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = shown_secret(response.content.decode())
    sub.refresh_from_db()
    assert sub.secret == secret != "s" * 32
    expected = hmac.new(secret.encode(), b"1700000000.{}", hashlib.sha256).hexdigest()
    assert webhook_sign(secret=sub.secret, timestamp="1700000000", body=b"{}") == expected
    event = AuditEvent.objects.get(action="webhook.secret_rotated")
    assert event.actor == admin_user and secret not in str(event.changes)
    assert admin_web.post("/webhooks/999999/rotate-secret/").status_code == 404


def test_the_delivery_log_is_paginated_filtered_and_shows_responses(admin_web):
    sub = subscription()
    for _ in range(30):
        delivery(sub, status="succeeded", last_status_code=200, attempts=1)
    failed = delivery(sub, status="failed", last_status_code=410, last_response_body="gone for good", attempts=1)
    first = admin_web.get(f"/webhooks/{sub.pk}/").content.decode()
    assert first.count("data-delivery=") == 25 and "31 deliveries" in first
    assert "HTTP 410" in first and "gone for good" in first  # newest first
    second = admin_web.get(f"/webhooks/{sub.pk}/?page=2").content.decode()
    assert second.count("data-delivery=") == 6
    only_failed = admin_web.get(f"/webhooks/{sub.pk}/?status=failed").content.decode()
    assert only_failed.count("data-delivery=") == 1 and f'data-delivery="{failed.pk}"' in only_failed


def test_redelivering_queues_a_copy_and_keeps_the_original(admin_web):
    sub = subscription()
    original = delivery(sub, status="failed", last_status_code=500, attempts=5)
    response = admin_web.post(f"/webhooks/deliveries/{original.pk}/redeliver/")
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{sub.pk}/"
    copy = WebhookDelivery.objects.exclude(pk=original.pk).get()
    assert (copy.redelivery_of_id, copy.status, copy.payload, copy.event) == (
        original.pk,
        "pending",
        original.payload,
        "lead.mql",
    )
    original.refresh_from_db()
    assert original.status == "failed"
    page = admin_web.get(response["Location"]).content.decode()
    assert f"queued again as delivery {copy.pk}" in page

    # A disabled subscription refuses, with the reason on the page.
    WebhookSubscription.objects.filter(pk=sub.pk).update(active=False)
    response = admin_web.post(f"/webhooks/deliveries/{original.pk}/redeliver/", follow=True)
    assert "re-enable it before redelivering" in response.content.decode()
    assert WebhookDelivery.objects.count() == 2


def test_the_api_rotates_the_secret_for_admins_only(admin_client_api, marketer_client):
    sub = subscription()
    assert marketer_client.post(f"/api/v1/webhooks/{sub.pk}/rotate-secret/").status_code == 403
    response = admin_client_api.post(f"/api/v1/webhooks/{sub.pk}/rotate-secret/")
    assert response.status_code == 200
    sub.refresh_from_db()
    assert response.json() == {"id": sub.pk, "secret": sub.secret} and sub.secret != "s" * 32


def test_the_delivery_log_runs_the_same_queries_for_3_or_25_rows(admin_web, django_assert_num_queries):
    sub = subscription()
    original = delivery(sub, status="failed")
    for _ in range(2):
        delivery(sub, status="succeeded", redelivery_of=original)
    admin_web.get(f"/webhooks/{sub.pk}/")  # warm the session
    with CaptureQueriesContext(connection) as few:
        admin_web.get(f"/webhooks/{sub.pk}/")
    for _ in range(22):
        delivery(sub, status="succeeded", redelivery_of=original)
    # session, user, the subscription, the page's count and rows (and the message storage)
    with django_assert_num_queries(len(few.captured_queries)):
        page = admin_web.get(f"/webhooks/{sub.pk}/").content.decode()
    assert page.count("data-delivery=") == 25

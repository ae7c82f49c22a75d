"""Outgoing webhooks against a real HTTP receiver on 127.0.0.1 started by the test."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from leadfunnel.models import Notification, WebhookDelivery, WebhookSubscription
from leadfunnel.outbox import outbox_dispatch, outbox_publish
from leadfunnel.tasks import webhooks_sweep
from leadfunnel.webhooks import _is_public_address, webhook_deliver
from leads.handlers import events_for_stage_change
from leads.services import lead_change_stage
from tests.factories import LeadFactory

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """Records every POST; answers with the queued statuses (then 200), optionally slowly."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(f"status {status}".encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def subscription(receiver, admin_user):
    return WebhookSubscription.objects.create(
        url=receiver.url, secret=SECRET, events=["lead.stage_changed", "lead.mql", "lead.created"]
    )


def dispatch(capture):
    with capture(execute=True):
        outbox_dispatch()


def make_due(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# --- delivery, signature ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stage_change_is_delivered_signed_after_commit(
    subscription, receiver, sales_rep, django_capture_on_commit_callbacks
):
    lead = LeadFactory()
    transition = lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sales_rep)
    assert receiver.requests == []  # nothing leaves before the outbox is dispatched after commit
    dispatch(django_capture_on_commit_callbacks)

    assert sorted(r["headers"]["X-LeadFunnel-Event"] for r in receiver.requests) == ["lead.mql", "lead.stage_changed"]
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        timestamp = headers["X-LeadFunnel-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert headers["X-LeadFunnel-Signature"] == expected
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        assert payload["event"] == headers["X-LeadFunnel-Event"]
        assert payload["data"]["lead_id"] == lead.pk
        assert payload["data"]["transition_id"] == transition.pk
        assert payload["data"]["to"] == "mql"
    deliveries = WebhookDelivery.objects.filter(subscription=subscription)
    assert {(d.event, d.status, d.last_status_code, d.attempts) for d in deliveries} == {
        ("lead.mql", "succeeded", 200, 1),
        ("lead.stage_changed", "succeeded", 200, 1),
    }
    # Dispatching again does not queue the same event twice.
    dispatch(django_capture_on_commit_callbacks)
    assert deliveries.count() == 2 and len(receiver.requests) == 2


@pytest.mark.django_db
def test_only_subscribed_and_active_subscriptions_receive(
    subscription, receiver, sales_rep, django_capture_on_commit_callbacks
):
    other = WebhookSubscription.objects.create(url=receiver.url, secret=SECRET, events=["lead.customer"])
    inactive = WebhookSubscription.objects.create(url=receiver.url, secret=SECRET, events=["lead.mql"], active=False)
    lead_change_stage(lead=LeadFactory(), to_stage="mql", cause="rule", owner=sales_rep)
    dispatch(django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.filter(subscription__in=[other, inactive]).exists()
    assert WebhookDelivery.objects.filter(subscription=subscription).count() == 2


def test_stage_moves_map_to_the_documented_event_names():
    assert events_for_stage_change("mql", "sal") == ["lead.stage_changed", "lead.sal_accepted"]
    assert events_for_stage_change("mql", "recycled") == ["lead.stage_changed", "lead.sal_rejected"]
    assert events_for_stage_change("lost", "recycled") == ["lead.stage_changed", "lead.recycled"]
    assert events_for_stage_change("sql", "customer") == ["lead.stage_changed", "lead.customer"]
    assert events_for_stage_change("sql", "lost") == ["lead.stage_changed", "lead.lost"]


# --- retries, permanent failures, disable --------------------------------------------------------


@pytest.mark.django_db
def test_5xx_is_retried_with_backoff_until_it_succeeds(
    subscription, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 30
    receiver.statuses = [503, 500]
    with django_capture_on_commit_callbacks(execute=True):
        outbox_publish(topic="lead.created", payload={"lead_id": 1, "source": "api", "form_slug": None})
    dispatch(django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("retrying", 1, 503)
    assert timedelta(seconds=29) < delivery.next_attempt_at - delivery.last_attempt_at <= timedelta(seconds=30)
    assert webhooks_sweep() == 0  # not due yet
    make_due(delivery.pk)
    webhooks_sweep()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("retrying", 2, 500)
    assert timedelta(seconds=59) < delivery.next_attempt_at - delivery.last_attempt_at <= timedelta(seconds=60)
    assert WebhookSubscription.objects.get().consecutive_failures == 2
    make_due(delivery.pk)
    webhooks_sweep()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert [a["status_code"] for a in delivery.attempt_log] == [503, 500, 200]
    assert WebhookSubscription.objects.get().consecutive_failures == 0
    assert len(receiver.requests) == 3
    # The same delivery id is sent each time, so the receiver can drop duplicates.
    assert len({r["headers"]["X-LeadFunnel-Delivery"] for r in receiver.requests}) == 1


@pytest.mark.django_db
def test_a_timeout_is_retried(subscription, receiver):
    receiver.delay = 1.5
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event="lead.created", dedupe_key="t", payload={}
    )
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.last_status_code is None
    assert "Timed out" in delivery.last_error


@pytest.mark.django_db
def test_a_4xx_is_a_permanent_failure(subscription, receiver):
    receiver.statuses = [410]
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event="lead.created", dedupe_key="g", payload={}
    )
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code, delivery.next_attempt_at) == ("failed", 410, None)
    assert webhooks_sweep() == 0
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_retries_stop_after_a_day(subscription, receiver):
    receiver.default_status = 502
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event="lead.created",
        dedupe_key="old",
        payload={},
        created_at=timezone.now() - timedelta(hours=23, minutes=59, seconds=50),
    )
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"


@pytest.mark.django_db
def test_repeated_failures_disable_the_subscription_and_tell_admins(
    subscription, receiver, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    receiver.default_status = 500
    ids = [
        WebhookDelivery.objects.create(
            subscription=subscription, event="lead.created", dedupe_key=f"d{i}", payload={}
        ).pk
        for i in range(4)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        results = [webhook_deliver(delivery_id=pk) for pk in ids]
    assert results == ["retrying", "retrying", "retrying", None]  # the 4th is not even attempted
    subscription.refresh_from_db()
    assert subscription.active is False
    assert subscription.disabled_at is not None
    assert "3 failed deliveries" in subscription.disabled_reason
    assert len(receiver.requests) == 3
    notice = Notification.objects.get(kind="webhook_disabled")
    assert notice.recipient == admin_user and notice.sent_at is not None
    assert [m.subject for m in mail.outbox] == [f"Webhook disabled: {receiver.url}"]
    make_due(ids[0])
    assert webhooks_sweep() == 0  # disabled subscriptions are not delivered to


# --- API -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admins_create_list_update_and_delete_subscriptions(admin_client_api, receiver):
    body = {"url": receiver.url, "secret": SECRET, "events": ["lead.created", "lead.sql"]}
    response = admin_client_api.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["events"] == ["lead.created", "lead.sql"] and created["active"] is True
    assert "secret" not in created and created["secret_set"] is True
    sub = WebhookSubscription.objects.get(pk=created["id"])
    assert sub.secret == SECRET
    assert admin_client_api.get("/api/v1/webhooks/").json()["count"] == 1
    response = admin_client_api.patch(f"/api/v1/webhooks/{sub.pk}/", {"events": ["lead.customer"]}, format="json")
    assert response.status_code == 200 and response.json()["events"] == ["lead.customer"]
    assert admin_client_api.get("/api/v1/webhooks/events/").status_code == 200
    assert admin_client_api.delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 204
    assert not WebhookSubscription.objects.exists()
    assert admin_client_api.delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "events": ["lead.created"]},
        {"url": "http://10.1.2.3/hook", "secret": SECRET, "events": ["lead.created"]},
        {"url": "http://localhost/hook", "secret": SECRET, "events": ["lead.created"]},
        {"url": "http://[::1]/hook", "secret": SECRET, "events": ["lead.created"]},
        {"url": "http://169.254.169.254/latest", "secret": SECRET, "events": ["lead.created"]},
        {"url": "ftp://example.com/x", "secret": SECRET, "events": ["lead.created"]},
        {"url": "https://93.184.215.14/hook", "secret": SECRET, "events": ["lead.exploded"]},
        {"url": "https://93.184.215.14/hook", "secret": SECRET, "events": []},
        {"url": "https://93.184.215.14/hook", "secret": "short", "events": ["lead.created"]},
    ],
)
def test_bad_or_private_webhook_urls_are_refused(admin_client_api, settings, body):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = admin_client_api.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["message"]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_a_public_address_is_accepted_without_the_private_setting(admin_client_api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    body = {"url": "https://93.184.215.14/hook", "secret": SECRET, "events": ["lead.created"]}
    assert admin_client_api.post("/api/v1/webhooks/", body, format="json").status_code == 201


def test_address_classification():
    assert _is_public_address("93.184.215.14")
    for address in (
        "127.0.0.1",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "0.0.0.0",  # noqa: S104 - an address to classify, not a bind
        "::ffff:127.0.0.1",
    ):
        assert not _is_public_address(address), address


@pytest.mark.django_db
def test_webhooks_api_is_for_admins_only(marketer_client, sales_client, subscription):
    assert marketer_client.get("/api/v1/webhooks/").status_code == 403
    assert sales_client.post("/api/v1/webhooks/", {}, format="json").status_code == 403
    assert marketer_client.get(f"/api/v1/webhooks/{subscription.pk}/deliveries/").status_code == 403


@pytest.mark.django_db
def test_delivery_log_and_manual_redelivery(
    admin_client_api, subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [400]
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event="lead.created",
        dedupe_key="x",
        payload={"event": "lead.created", "data": {"lead_id": 5}},
    )
    webhook_deliver(delivery_id=delivery.pk)
    log = admin_client_api.get(f"/api/v1/webhooks/{subscription.pk}/deliveries/").json()
    assert log["count"] == 1
    assert (log["results"][0]["status"], log["results"][0]["last_status_code"]) == ("failed", 400)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_api.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 202, response.content
    copy = WebhookDelivery.objects.get(pk=response.json()["id"])
    assert (copy.status, copy.last_status_code, copy.redelivery_of_id) == ("succeeded", 200, delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed"  # the original stays in the log as it was
    assert json.loads(receiver.requests[-1]["body"])["data"] == {"lead_id": 5}
    failed = admin_client_api.get(f"/api/v1/webhooks/{subscription.pk}/deliveries/", {"status": "failed"}).json()
    assert failed["count"] == 1
    assert admin_client_api.post("/api/v1/webhooks/deliveries/999999/redeliver/").status_code == 404


@pytest.mark.django_db
def test_re_enabling_a_disabled_subscription_resets_its_failure_count(admin_client_api, subscription):
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        active=False, consecutive_failures=15, disabled_at=timezone.now(), disabled_reason="Disabled automatically"
    )
    response = admin_client_api.patch(f"/api/v1/webhooks/{subscription.pk}/", {"active": True}, format="json")
    assert response.status_code == 200, response.content
    subscription.refresh_from_db()
    assert (subscription.active, subscription.consecutive_failures, subscription.disabled_at) == (True, 0, None)
    assert subscription.disabled_reason == ""

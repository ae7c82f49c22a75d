"""End to end through a real Celery worker on Redis: stage change → outbox → webhook and email."""

import json

import pytest
from kombu import pools as kombu_pools

from leadfunnel.models import Notification, WebhookDelivery, WebhookSubscription
from leads.services import lead_change_stage
from tests.conftest import wait_until
from tests.factories import LeadFactory
from tests.ops.test_webhooks import SECRET, Receiver


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_webhook_and_the_rep_email_after_commit(
    celery_worker_factory, celery_app_on, sales_rep
):
    # celery_app_on closed the connection pools for the new broker URL; open fresh ones.
    kombu_pools.reset()
    celery_app_on._pool = None
    celery_app_on.amqp._producer_pool = None
    receiver = Receiver()
    try:
        celery_worker_factory(extra_env={"WEBHOOKS_ALLOW_PRIVATE_URLS": "true"})
        WebhookSubscription.objects.create(url=receiver.url, secret=SECRET, events=["lead.mql"])
        lead = LeadFactory()
        lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sales_rep)

        wait_until(lambda: receiver.requests, timeout=30, message="webhook not received")
        request = receiver.requests[0]
        assert request["headers"]["X-LeadFunnel-Event"] == "lead.mql"
        assert json.loads(request["body"])["data"]["lead_id"] == lead.pk
        wait_until(lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), message="delivery not recorded")
        wait_until(
            lambda: Notification.objects.filter(
                recipient=sales_rep, kind="mql_assigned", sent_at__isnull=False
            ).exists(),
            message="rep email not sent",
        )
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()

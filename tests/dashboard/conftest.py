"""Dashboard test world: browser-style session clients for each actor, and a small funnel history."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import LeadFactory, StageTransitionFactory


@pytest.fixture
def browser_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return make


@pytest.fixture
def marketer_web(marketer, browser_for) -> Client:
    return browser_for(marketer)


@pytest.fixture
def rep_web(sales_rep, browser_for) -> Client:
    return browser_for(sales_rep)


def walk(lead, stages: list[str], *, start, step=timedelta(days=1), cycle: int = 1) -> None:
    """Record a stage history for ``lead`` directly (analytics-style), ending in the last stage."""
    previous = lead.stage
    at = start
    for stage in stages:
        StageTransitionFactory(lead=lead, from_stage=previous, to_stage=stage, at=at, cycle=cycle)
        previous = stage
        at += step
    lead.stage = previous
    lead.stage_changed_at = at - step
    lead.save(update_fields=["stage", "stage_changed_at"])


@pytest.fixture
def funnel_world(db):
    """Ten leads created 20 days ago: 6 became MQL, 4 SAL, 2 SQL, 1 customer; one PQL."""
    start = timezone.now() - timedelta(days=20)
    leads = [LeadFactory(created_at=start, source="webinar" if i < 4 else "website") for i in range(10)]
    walk(leads[0], ["mql", "sal", "sql", "customer"], start=start + timedelta(days=1))
    walk(leads[1], ["mql", "sal", "sql"], start=start + timedelta(days=1))
    walk(leads[2], ["mql", "sal"], start=start + timedelta(days=2))
    walk(leads[3], ["mql", "sal"], start=start + timedelta(days=2))
    walk(leads[4], ["mql"], start=start + timedelta(days=3))
    walk(leads[5], ["mql", "recycled"], start=start + timedelta(days=3))
    walk(leads[6], ["pql"], start=start + timedelta(days=4))
    return leads

"""Concurrent interactions on one lead never lose points (PostgreSQL row locks)."""

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from leads.models import Interaction, Lead
from leads.services import interactions_record_bulk, leads_score_pending, leads_score_pending_all
from scoring import services
from scoring.models import LeadRuleTotal, PendingScore, ScoreContribution, ScoringRule
from scoring.selectors import scoring_settings_get
from scoring.services import configuration
from tests.factories import LeadFactory
from tests.scoring import funnel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
EACH = 5


def _setup_rules():
    scoring_settings_get()
    ScoringRule.objects.update(active=False)
    configuration._bump_version()
    services.rule_create(
        name="Click",
        dimension="engagement",
        source="interaction",
        interaction_type="email_click",
        points=1,
        recompute=False,
    )
    services.rule_create(
        name="Open",
        dimension="engagement",
        source="interaction",
        interaction_type="email_open",
        points=2,
        max_points=50,
        recompute=False,
    )


def _run_threads(target, count):
    barrier = threading.Barrier(count)
    errors = []

    def run(n):
        try:
            barrier.wait(timeout=10)
            target(n)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_concurrent_single_interactions_on_one_lead_all_count():
    _setup_rules()
    lead = LeadFactory()

    def record(_n):
        for _ in range(EACH):
            with transaction.atomic():
                interaction = Interaction.objects.create(lead_id=lead.pk, type="email_click")
                funnel.score_interactions(lead=Lead.objects.get(pk=lead.pk), interactions=[interaction])

    _run_threads(record, THREADS)
    lead.refresh_from_db()
    assert lead.engagement_points == THREADS * EACH
    assert ScoreContribution.objects.filter(lead=lead).count() == THREADS * EACH
    assert LeadRuleTotal.objects.get(lead=lead).matches == THREADS * EACH


def test_concurrent_bulk_batches_over_the_same_leads_neither_deadlock_nor_lose_points():
    _setup_rules()
    leads = LeadFactory.create_batch(4)

    def bulk(n):
        order = leads if n % 2 else list(reversed(leads))
        for _ in range(3):
            with transaction.atomic():
                batch = Interaction.objects.bulk_create(
                    [Interaction(lead_id=lead.pk, type="email_open") for lead in order]
                    + [Interaction(lead_id=lead.pk, type="email_click") for lead in order]
                )
                funnel.score_interactions_bulk(interactions=batch)

    _run_threads(bulk, 6)
    # 18 batches per lead: 18 opens (2 points, capped at 50 → 36) and 18 clicks.
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("engagement_points", flat=True)) == {
        18 * 2 + 18
    }


def test_drains_running_at_once_with_new_events_arriving_score_every_event_once(settings):
    """The deferred queue under concurrency: bulk requests keep queueing while three drains claim
    batches (SKIP LOCKED); every event is scored exactly once, none is left, nothing deadlocks."""
    _setup_rules()
    settings.SCORING_DEFERRED = True
    leads = LeadFactory.create_batch(6)
    per_request = [{"lead": lead.pk, "type": "email_click"} for lead in leads]

    def work(n):
        if n < 3:  # requests
            for _ in range(4):
                assert interactions_record_bulk(events=per_request).accepted == len(leads)
        else:  # drains, small batches so they overlap
            for _ in range(20):
                leads_score_pending(limit=5)

    _run_threads(work, 6)
    leads_score_pending_all()
    assert not PendingScore.objects.exists()
    # 3 requests x 4 batches: 12 clicks per lead, each scored once.
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("engagement_points", flat=True)) == {
        12
    }
    assert ScoreContribution.objects.count() == 12 * len(leads)

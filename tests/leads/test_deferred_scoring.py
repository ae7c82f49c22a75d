"""SCORING_DEFERRED: the intake and bulk paths store events with a row in the scoring queue and a
worker scores them after commit — with the same function as in the request, so the same result."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Interaction, Lead, StageTransition
from leads.services import interactions_record_bulk, leads_score_pending, leads_score_pending_all, qualification
from scoring.models import PendingScore, ScoreContribution
from scoring.services import scoring_settings_update
from tests.factories import FormFactory, LeadFactory

pytestmark = pytest.mark.django_db

PERSON = {"first_name": "Ada", "last_name": "Lee", "title": "VP Sales", "company": "Acme"}


@pytest.fixture
def model(make_rule, sales_rep):
    scoring_settings_update(mql_threshold=40, required_profile_fields=["first_name", "last_name"], recompute=False)
    make_rule(name="Contact form", interaction_type="form_submit", points=50)
    make_rule(name="Demo", interaction_type="demo_request", points=60)
    make_rule(name="VP", dimension="fit", source="profile", field="title", operator="contains", value=["vp"], points=40)
    return FormFactory(slug="contact")


def submit(client, email: str):
    return client.post("/api/v1/forms/contact/submit/", {"email": email, **PERSON}, format="json")


def _scored(email: str) -> tuple:
    lead = Lead.objects.select_related("owner").get(email=email)
    ledger = sorted(ScoreContribution.objects.filter(lead=lead).values_list("rule__name", "points", "reason"))
    stages = list(lead.transitions.order_by("at").values_list("from_stage", "to_stage", "cause", "reason"))
    return (lead.score, lead.fit_score, lead.engagement_score, lead.stage, lead.owner, ledger, stages)


def test_a_deferred_submission_is_stored_at_once_and_scored_by_the_drain_like_in_the_request(
    model, anon_client, marketer_client, settings
):
    assert submit(anon_client, "inline@acme.example").status_code == 201
    inline = _scored("inline@acme.example")
    assert inline[3] == "mql"  # 50 for the form + 40 fit → MQL, with a rep

    settings.SCORING_DEFERRED = True
    assert submit(anon_client, "later@acme.example").status_code == 201
    # Stored and readable at once, queued, not scored yet.
    found = marketer_client.get("/api/v1/leads/", {"email": "later@acme.example"}).json()
    assert found["count"] == 1 and found["results"][0]["stage"] == "visitor"
    lead = Lead.objects.get(email="later@acme.example")
    assert lead.score_updated_at is None
    queued = PendingScore.objects.get()
    assert (queued.lead_id, queued.profile) == (lead.pk, True)
    assert queued.interaction_id == Interaction.objects.get(lead=lead, type="form_submit").pk

    assert leads_score_pending_all() == 1
    assert not PendingScore.objects.exists()
    later = _scored("later@acme.example")
    assert later[:4] == inline[:4] and later[5:] == inline[5:]  # the same scores, ledger and history
    assert later[4] is not None  # a rep, round-robin (the only rep again)
    assert leads_score_pending_all() == 0  # nothing scored twice


def test_a_deferred_bulk_request_queues_every_event_and_the_drain_scores_them(model, settings):
    settings.SCORING_DEFERRED = True
    leads = [LeadFactory(**{k: v for k, v in PERSON.items() if k != "company"}) for _ in range(3)]
    events = [{"lead": lead.pk, "type": "demo_request"} for lead in leads]
    events.append({"email": "new@bulk.example", "type": "page_view"})
    result = interactions_record_bulk(events=events)
    assert result.accepted == 4
    assert PendingScore.objects.count() == 4 and not ScoreContribution.objects.exists()
    assert all(lead.stage == "visitor" for lead in Lead.objects.all())

    assert leads_score_pending(limit=2) == 2  # a batch at a time
    assert PendingScore.objects.count() == 2
    assert leads_score_pending_all() == 2
    for lead in leads:
        lead.refresh_from_db()
        assert (lead.stage, lead.score) == ("mql", 50)  # 60 engagement, 40 fit
        assert StageTransition.objects.filter(lead=lead, to_stage="mql", cause="rule").exists()


def test_a_drain_that_fails_midway_leaves_its_batch_queued_and_scores_it_once_later(model, settings, monkeypatch):
    settings.SCORING_DEFERRED = True
    lead = LeadFactory(**{k: v for k, v in PERSON.items() if k != "company"})
    interactions_record_bulk(events=[{"lead": lead.pk, "type": "demo_request"}])
    real = qualification.leads_score

    def worker_lost(**kwargs):
        real(**kwargs)  # its writes are rolled back with the claim
        raise RuntimeError("worker lost")

    monkeypatch.setattr(qualification, "leads_score", worker_lost)
    with pytest.raises(RuntimeError):
        leads_score_pending_all()
    assert PendingScore.objects.count() == 1 and not ScoreContribution.objects.exists()
    lead.refresh_from_db()
    assert lead.stage == "visitor"

    monkeypatch.setattr(qualification, "leads_score", real)
    assert leads_score_pending_all() == 1
    assert ScoreContribution.objects.filter(lead=lead, rule__name="Demo").count() == 1
    lead.refresh_from_db()
    assert lead.stage == "mql"


def test_after_commit_a_worker_is_asked_to_drain(model, anon_client, settings, django_capture_on_commit_callbacks):
    settings.SCORING_DEFERRED = True  # eager Celery in tests: the kicked drain runs right after commit
    with django_capture_on_commit_callbacks(execute=True):
        assert submit(anon_client, "kicked@acme.example").status_code == 201
    assert not PendingScore.objects.exists()
    assert Lead.objects.get(email="kicked@acme.example").stage == "mql"


@pytest.mark.postgres  # pins PostgreSQL's statements
def test_a_deferred_submission_makes_no_scoring_query_in_the_request(model, anon_client, settings):
    settings.SCORING_DEFERRED = True
    submit(anon_client, "warmup@acme.example")
    with CaptureQueriesContext(connection) as ctx:
        assert submit(anon_client, "new@acme.example").status_code == 201
    # 1 form, 2 savepoint, 3 merged leads' aliases, 4 lead upsert, 5 its first history line, 6 submission +
    # interaction + queue row (one statement), 7 outbox, 8 release: nothing of scoring's reads and writes.
    statements = [q["sql"] for q in ctx.captured_queries]
    assert len(statements) == 8, statements
    assert not [s for s in statements if "scoring_scoringsettings" in s or "scoring_leadruletotal" in s]
    assert "scoring_pendingscore" in statements[5]

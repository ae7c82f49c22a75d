"""Recording interactions: POST /api/v1/interactions/ and /bulk/."""

import pytest
from django.utils import timezone

from leadfunnel.models import OutboxMessage
from leads.models import Interaction, Lead, StageTransition
from leads.services import interactions_record_bulk
from tests.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_one_event_by_lead_id_is_stored_and_announced_once(marketer_client):
    lead = LeadFactory()
    response = marketer_client.post(
        "/api/v1/interactions/",
        {
            "lead": lead.pk,
            "type": "page_view",
            "occurred_at": "2026-11-01T10:00:00Z",
            "properties": {"url": "/pricing"},
        },
        format="json",
    )
    assert response.status_code == 201
    interaction = Interaction.objects.get()
    assert response.json()["id"] == interaction.pk
    assert interaction.lead == lead and interaction.properties == {"url": "/pricing"}
    assert interaction.occurred_at.isoformat() == "2026-11-01T10:00:00+00:00"
    message = OutboxMessage.objects.get()
    assert message.topic == "interactions.recorded"
    assert message.payload == {"lead_ids": [lead.pk], "types": ["page_view"]}
    lead.refresh_from_db()
    assert lead.last_activity_at == interaction.occurred_at


def test_an_event_for_an_unknown_email_creates_a_visitor(marketer_client):
    response = marketer_client.post(
        "/api/v1/interactions/", {"email": "New.Person@Acme.example", "type": "webinar_registered"}, format="json"
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert lead.email == "new.person@acme.example" and lead.stage == "visitor" and lead.channel == "interaction"
    assert StageTransition.objects.get(lead=lead).to_stage == "visitor"
    assert set(OutboxMessage.objects.values_list("topic", flat=True)) == {"interactions.recorded", "lead.created"}


def test_unknown_emails_can_be_rejected_by_configuration(marketer_client, settings):
    settings.LEADFUNNEL_UNKNOWN_EMAIL_EVENTS = "reject"
    response = marketer_client.post(
        "/api/v1/interactions/", {"email": "ghost@acme.example", "type": "page_view"}, format="json"
    )
    assert response.status_code == 400
    assert "LEADFUNNEL_UNKNOWN_EMAIL_EVENTS" in response.json()["message"]
    assert not Lead.objects.exists() and not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"lead": 1, "type": "teleport"}, "type"),
        ({"type": "page_view"}, "lead"),
        ({"lead": 999999, "type": "page_view"}, "No lead with id"),
        ({"email": "nope", "type": "page_view"}, "email"),
        ({"email": "a@b.example", "type": "page_view", "occurred_at": "yesterday"}, "occurred_at"),
        ({"email": "a@b.example", "type": "page_view", "occurred_at": "2999-01-01T00:00:00Z"}, "future"),
        ({"email": "a@b.example", "type": "page_view", "properties": [1]}, "properties"),
    ],
)
def test_bad_events_are_a_clear_400(marketer_client, body, needle):
    response = marketer_client.post("/api/v1/interactions/", body, format="json")
    assert response.status_code == 400
    assert needle in response.json()["message"]
    assert not Interaction.objects.exists()


def test_unsubscribe_and_bounce_flag_the_lead_once(marketer_client):
    lead = LeadFactory()
    for event_type in ("unsubscribe", "email_bounce"):
        assert (
            marketer_client.post(
                "/api/v1/interactions/", {"lead": lead.pk, "type": event_type}, format="json"
            ).status_code
            == 201
        )
    lead.refresh_from_db()
    first_unsubscribe = lead.unsubscribed_at
    assert first_unsubscribe is not None and lead.email_bounced_at is not None
    marketer_client.post("/api/v1/interactions/", {"lead": lead.pk, "type": "unsubscribe"}, format="json")
    lead.refresh_from_db()
    assert lead.unsubscribed_at == first_unsubscribe


def test_a_resent_event_with_the_same_external_id_is_stored_once(marketer_client):
    lead = LeadFactory()
    body = {"lead": lead.pk, "type": "email_open", "source": "esp", "external_id": "evt-1"}
    first = marketer_client.post("/api/v1/interactions/", body, format="json")
    again = marketer_client.post("/api/v1/interactions/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Interaction.objects.count() == 1


def test_sales_reps_may_log_events_and_anonymous_callers_may_not(sales_client, anon_client):
    lead = LeadFactory()
    assert (
        sales_client.post("/api/v1/interactions/", {"lead": lead.pk, "type": "page_view"}, format="json").status_code
        == 201
    )
    assert (
        anon_client.post("/api/v1/interactions/", {"lead": lead.pk, "type": "page_view"}, format="json").status_code
        == 401
    )


def test_recording_one_event_makes_the_same_queries_whatever_the_history(marketer_client, django_assert_num_queries):
    fresh = LeadFactory()
    busy = LeadFactory()
    InteractionFactory.create_batch(50, lead=busy)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = {"type": "page_view", "properties": {"url": "/pricing"}}
    # Warm-up: per-process caches (e.g. the scoring rules) fill on the first event.
    marketer_client.post("/api/v1/interactions/", {**body, "lead": LeadFactory().pk}, format="json")
    with CaptureQueriesContext(connection) as ctx:
        assert (
            marketer_client.post("/api/v1/interactions/", {**body, "lead": fresh.pk}, format="json").status_code == 201
        )
    with django_assert_num_queries(len(ctx.captured_queries)):
        assert (
            marketer_client.post("/api/v1/interactions/", {**body, "lead": busy.pk}, format="json").status_code == 201
        )


@pytest.mark.postgres  # pins PostgreSQL's statements (upsert, unnest); SQLite takes a few more
def test_recording_one_event_itself_makes_a_pinned_number_of_queries(
    marketer_client, django_assert_num_queries, monkeypatch
):
    from leads.services import qualification
    from scoring.services import ScoreOutcome

    monkeypatch.setattr(qualification, "score_leads", lambda **kw: ScoreOutcome())
    lead = LeadFactory()
    InteractionFactory.create_batch(50, lead=lead)
    marketer_client.get("/api/v1/me/")  # warm the token user's role cache path
    # 1 token, 2 user's groups (roles), 3 savepoint, 4 lock the lead, 5 insert, 6 update flags, 7 outbox, 8 release.
    with django_assert_num_queries(8):
        assert (
            marketer_client.post(
                "/api/v1/interactions/", {"lead": lead.pk, "type": "page_view"}, format="json"
            ).status_code
            == 201
        )


# --- bulk ---------------------------------------------------------------------------------


def test_bulk_stores_good_events_and_reports_bad_ones_by_index(marketer_client):
    known = LeadFactory(email="known@acme.example")
    events = [
        {"lead": known.pk, "type": "page_view", "properties": {"url": "/pricing"}},
        {"email": "KNOWN@acme.example", "type": "email_click"},
        {"email": "stranger@acme.example", "type": "webinar_attended", "occurred_at": "2026-11-02T09:00:00+01:00"},
        {"lead": known.pk, "type": "no_such_type"},
        {"lead": 987654, "type": "page_view"},
        "not an object",
        {"email": "stranger@acme.example", "type": "unsubscribe"},
    ]
    response = marketer_client.post("/api/v1/interactions/bulk/", {"events": events}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 4
    assert [e["index"] for e in body["errors"]] == [3, 4, 5]
    assert "no_such_type" in body["errors"][0]["error"]
    stranger = Lead.objects.get(email="stranger@acme.example")
    assert body["created_leads"] == [stranger.pk]
    assert Interaction.objects.filter(lead=known).count() == 2
    assert Interaction.objects.filter(lead=stranger).count() == 2
    assert stranger.unsubscribed_at is not None
    recorded = OutboxMessage.objects.filter(topic="interactions.recorded")
    assert recorded.count() == 1
    assert recorded.get().payload == {
        "lead_ids": sorted([known.pk, stranger.pk]),
        "types": ["email_click", "page_view", "unsubscribe", "webinar_attended"],
    }


def test_bulk_accepts_a_bare_list_and_refuses_more_than_1000_events(marketer_client):
    lead = LeadFactory()
    assert (
        marketer_client.post(
            "/api/v1/interactions/bulk/", [{"lead": lead.pk, "type": "page_view"}], format="json"
        ).json()["accepted"]
        == 1
    )
    too_many = [{"lead": lead.pk, "type": "page_view"}] * 1001
    response = marketer_client.post("/api/v1/interactions/bulk/", too_many, format="json")
    assert response.status_code == 400 and "1000" in response.json()["message"]
    assert Interaction.objects.count() == 1
    assert marketer_client.post("/api/v1/interactions/bulk/", {"events": "x"}, format="json").status_code == 400


def test_bulk_drops_events_already_recorded_by_external_id(marketer_client):
    lead = LeadFactory()
    events = [{"lead": lead.pk, "type": "email_open", "source": "esp", "external_id": f"e{i}"} for i in range(3)]
    first = marketer_client.post("/api/v1/interactions/bulk/", events + events[:1], format="json").json()
    assert (first["accepted"], first["duplicates"]) == (3, 1)
    again = marketer_client.post("/api/v1/interactions/bulk/", events, format="json").json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert Interaction.objects.count() == 3


@pytest.mark.postgres  # pins PostgreSQL's statements (upsert, unnest); SQLite takes a few more
def test_bulk_is_set_based_a_thousand_events_take_a_handful_of_queries(django_assert_max_num_queries, monkeypatch):
    from leads.services import qualification
    from scoring.services import ScoreOutcome

    monkeypatch.setattr(qualification, "score_leads", lambda **kw: ScoreOutcome())
    leads = LeadFactory.create_batch(20)
    now = timezone.now().isoformat()
    events = [{"lead": leads[i % 20].pk, "type": "page_view", "occurred_at": now} for i in range(900)]
    events += [{"email": f"new{i}@bulk.example", "type": "email_open"} for i in range(100)]
    # aliases of merged leads, lock known leads, lock/insert by email, visitors' history, interactions,
    # lead flags, outbox, savepoints
    with django_assert_max_num_queries(11):
        result = interactions_record_bulk(events=events)
    assert result.accepted == 1000 and not result.errors
    assert Lead.objects.count() == 120 and Interaction.objects.count() == 1000


def test_an_event_id_taken_by_a_concurrent_request_drops_that_copy():
    """The side table's conflict, not the interactions table, decides: the later copy goes away."""
    from leads import sql
    from leads.models import InteractionKey

    lead = LeadFactory()
    first = Interaction.objects.create(lead=lead, type="page_view", source="crm", external_id="e-1")
    InteractionKey.objects.create(source="crm", external_id="e-1", interaction_id=first.pk)
    copy = Interaction.objects.create(lead=lead, type="page_view", source="crm", external_id="e-1")
    fresh = Interaction.objects.create(lead=lead, type="page_view", source="crm", external_id="e-2")
    lost = sql.interaction_keys_insert([("crm", "e-1", copy.pk), ("crm", "e-2", fresh.pk)])
    assert lost == {copy.pk}
    assert set(Interaction.objects.values_list("pk", flat=True)) == {first.pk, fresh.pk}
    assert InteractionKey.objects.get(external_id="e-2").interaction_id == fresh.pk


@pytest.mark.postgres
def test_interactions_and_the_score_ledger_carry_no_constraint_that_forbids_partitioning_by_month():
    """Range partitions need every unique constraint to include the partition key, and nothing may
    refer to the rows by a foreign key: these tables keep only their id as a key."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, contype FROM pg_constraint "
            "WHERE conrelid IN ('leads_interaction'::regclass, 'scoring_scorecontribution'::regclass) AND contype IN ('u', 'p', 'x')"
        )
        keys = sorted(cursor.fetchall())
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE confrelid IN ('leads_interaction'::regclass, 'scoring_scorecontribution'::regclass)"
        )
        referring = cursor.fetchall()
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indisunique AND NOT indisprimary "
            "AND indrelid IN ('leads_interaction'::regclass, 'scoring_scorecontribution'::regclass)"
        )
        unique_indexes = cursor.fetchall()
    assert keys == [("leads_interaction", "p"), ("scoring_scorecontribution", "p")]
    assert referring == [] and unique_indexes == []

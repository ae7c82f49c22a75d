"""Input the database cannot store is a 400 naming the field, never a 500: integers beyond the
column's range, timestamps PostgreSQL refuses, NUL characters (refused by text and jsonb)."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from rest_framework import serializers

from leadfunnel import validation
from leads.models import FormSubmission, Lead
from nurturing.models import Sequence
from tests.factories import FormFactory, LeadFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _field_named(response, name: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert name in json.dumps(body.get("errors", {})) or name in body["message"], body


# --- the three reported answers --------------------------------------------------------------


def test_a_sequence_cap_beyond_a_smallint_is_a_400_naming_the_field(marketer_client):
    response = marketer_client.post(
        "/api/v1/sequences/", {"name": "Too many", "max_messages_per_day": 408136}, format="json"
    )
    _field_named(response, "max_messages_per_day")
    assert Sequence.objects.count() == 0
    ok = marketer_client.post("/api/v1/sequences/", {"name": "Fine", "max_messages_per_day": 32767}, format="json")
    assert ok.status_code == 201, ok.content


@pytest.mark.parametrize(
    "value",
    [
        "1427-03-18T14:16:36-16:00",  # PostgreSQL refuses the offset
        "2026-01-01T00:00:00+16:00",
        "2026-01-01T00:00:00+05:30:15",  # an offset with seconds
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
    ],
)
def test_a_timestamp_postgresql_cannot_take_is_a_400_naming_the_filter(marketer_client, value):
    LeadFactory()
    _field_named(marketer_client.get("/api/v1/leads/", {"created_before": value}), "created_before")


def test_reasonable_offsets_still_filter(marketer_client):
    lead = LeadFactory()
    later = (lead.created_at + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-15, minutes=-59)))
    response = marketer_client.get("/api/v1/leads/", {"created_before": later.isoformat()})
    assert response.status_code == 200 and response.json()["count"] == 1


def test_a_nul_character_in_a_form_submission_is_a_400_naming_the_field(anon_client):
    FormFactory(slug="contact")
    for body, name in (
        ({"email": "ada@analytical.example", "team": "a\u0000b"}, "team"),
        ({"email": "ada@analytical.example", "te\u0000am": "ab"}, "te"),
        ({"email": "ada@analytical.example", "answers": {"q": ["x\u0000"]}}, "answers"),
        ({"email": "ada@analytical.example", "first_name": "A\u0000da"}, "first_name"),
    ):
        response = anon_client.post(
            "/api/v1/forms/contact/submit/", data=json.dumps(body), content_type="application/json"
        )
        _field_named(response, name)
    form_encoded = anon_client.post(
        "/api/v1/forms/contact/submit/",
        data="email=ada%40analytical.example&team=a%00b",
        content_type="application/x-www-form-urlencoded",
    )
    _field_named(form_encoded, "team")
    assert Lead.objects.count() == 0 and FormSubmission.objects.count() == 0


def test_a_nul_character_anywhere_in_api_input_is_a_400(marketer_client):
    lead = LeadFactory()
    patch = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"custom_fields": {"k": "v\u0000"}}, format="json")
    _field_named(patch, "custom_fields")
    event = marketer_client.post(
        "/api/v1/interactions/", {"lead": lead.pk, "type": "page_view", "properties": {"u\u0000": 1}}, format="json"
    )
    _field_named(event, "properties")
    query = marketer_client.get("/api/v1/leads/", {"search": "a\u0000b"})
    _field_named(query, "search")
    lead.refresh_from_db()
    assert lead.custom_fields == {}


# --- the shared rules ------------------------------------------------------------------------


def test_integer_bounds_follow_the_model_field_type():
    from django.db import models

    assert validation.integer_range(models.SmallIntegerField()) == (-32768, 32767)
    assert validation.integer_range(models.PositiveSmallIntegerField()) == (0, 32767)
    assert validation.integer_range(models.PositiveIntegerField()) == (0, 2147483647)
    assert validation.integer_range(models.IntegerField()) == (-2147483648, 2147483647)
    assert validation.integer_range(models.BigIntegerField()) == (-(2**63), 2**63 - 1)
    field = validation.db_integer(Sequence, "max_messages_per_day")
    with pytest.raises(serializers.ValidationError):
        field.run_validation(32768)
    assert field.run_validation(32767) == 32767


def test_datetimes_are_checked_and_normalised_to_utc():
    assert validation.parse_datetime("2026-05-01T12:00:00+02:00", field="at") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert validation.parse_datetime("2026-05-01T12:00:00", field="at") == datetime(2026, 5, 1, 12, tzinfo=UTC)
    for bad in ("2026-05-01T12:00:00+16:00", "0001-01-01T00:30:00+01:00", "nonsense", "2026-02-30T00:00:00Z"):
        with pytest.raises(validation.InvalidInput) as caught:
            validation.parse_datetime(bad, field="at")
        assert caught.value.field == "at"


def test_the_nul_check_names_the_path():
    assert validation.nul_path({"a": [{"b": "x\u0000"}]}) == "a.0.b"
    assert validation.nul_path({"a\u0000": 1}) == "a"
    assert validation.nul_path({"a": ["fine", 1, None, {"b": 2.5}]}) is None


def test_ids_beyond_the_id_column_are_a_400_naming_the_field(marketer_client):
    huge = 2**70
    single = marketer_client.post("/api/v1/interactions/", {"lead": huge, "type": "page_view"}, format="json")
    _field_named(single, "lead")
    bulk = marketer_client.post("/api/v1/interactions/bulk/", [{"lead": huge, "type": "page_view"}], format="json")
    assert bulk.status_code == 200 and "lead" in bulk.json()["errors"][0]["error"]
    sequence = marketer_client.post("/api/v1/sequences/", {"name": "S"}, format="json").json()
    enrol = marketer_client.post(f"/api/v1/sequences/{sequence['id']}/enrollments/", {"lead": huge}, format="json")
    _field_named(enrol, "lead")


def test_the_sequence_page_refuses_a_cap_beyond_the_column(client, marketer):
    client.force_login(marketer)
    response = client.post("/sequences/new/", {"name": "Capped", "max_messages_per_day": "408136"})
    assert response.status_code == 400  # the page again, with the message on the field
    assert "less than or equal to 32767" in response.content.decode()
    assert Sequence.objects.count() == 0


@pytest.mark.parametrize(
    "values",
    [["not a date", 1], ["2026-01-01T00:00:00+16:00", 1], ["2026-01-01T00:00:00Z", 2**70], ["x\u0000", 1], [{}, 1]],
)
def test_a_tampered_leads_page_cursor_shows_the_first_page(client, marketer, values):
    import base64

    LeadFactory()
    client.force_login(marketer)
    cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    for sort in ("-created_at", "-score"):
        response = client.get("/leads/", {"cursor": cursor, "sort": sort})
        assert response.status_code == 200


@pytest.mark.parametrize("wait", [{"days": 10**9}, {"minutes": 2**70}, {"hours": 1e300}])
def test_a_wait_beyond_a_storable_due_date_is_refused(marketer_client, wait):
    """Such a step used to be saved, then crashed the nurture executor on every tick."""
    steps = [{"kind": "wait", **wait}, {"kind": "email", "subject": "Hi", "body": "<p>Hello</p>"}]
    response = marketer_client.post("/api/v1/sequences/", {"name": "Forever", "steps": steps}, format="json")
    _field_named(response, "steps")
    assert "ten years" in response.content.decode()
    assert Sequence.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/funnel/?until=0001-01-02",
        "/api/v1/funnel/?until=9999-12-31",
        "/api/v1/funnel/?since=0001-01-01&until=9999-12-31",
        "/api/v1/funnel/?until=2026-01-01T00:00:00-16:00",
        "/api/v1/scoring/channel-quality/?until=0001-01-02",
        "/api/v1/scoring/channel-quality/?until=9999-12-31",
    ],
)
def test_report_periods_at_the_edges_of_time_are_a_clear_answer(marketer_client, url):
    response = marketer_client.get(url)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/?since=0001-01-01&until=9999-12-31",
        "/?until=0001-01-01",
        "/?until=9999-12-31",
        "/?since=2026-02-30",
        "/leads/?created_from=0001-01-01&created_to=9999-12-31",
        "/leads/?created_to=9999-12-31",
        "/scoring/insights/?until=0001-01-02",
        "/scoring/insights/?since=0001-01-01&until=9999-12-31",
    ],
)
def test_dashboard_pages_take_dates_at_the_edges_of_time(client, admin_user, url):
    client.force_login(admin_user)
    assert client.get(url).status_code in (200, 400)

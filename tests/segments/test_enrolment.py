"""A sequence enrols a saved segment (``{"kind": "segment", "segment": <id>}``) from the API and
the editor; the older inline segment spec keeps working."""

import pytest

from leads import services as lead_services
from leads.models import Segment
from nurturing import services
from nurturing.models import Enrollment, Sequence
from tests.factories import InteractionFactory, LeadFactory
from tests.nurturing.helpers import WELCOME_STEPS, make_sequence

pytestmark = pytest.mark.django_db


def _pricing_visitors() -> Segment:
    return lead_services.segment_create(
        data={
            "name": "Pricing visitors",
            "definition": {
                "conditions": [
                    {"behaviour": "page_view", "property": "url", "operator": "contains", "value": "/pricing"},
                    {"field": "score", "operator": "gte", "value": 20},
                ]
            },
        }
    )


def test_a_sequence_enrols_the_members_of_a_saved_segment_once():
    segment = _pricing_visitors()
    match = LeadFactory(score=30)
    InteractionFactory(lead=match, type="page_view", properties={"url": "/pricing"})
    low = LeadFactory(score=5)
    InteractionFactory(lead=low, type="page_view", properties={"url": "/pricing"})
    unsubscribed = LeadFactory(score=30, unsubscribed_at="2026-01-01T00:00:00Z")
    InteractionFactory(lead=unsubscribed, type="page_view", properties={"url": "/pricing"})
    LeadFactory(score=90)  # never saw pricing
    make_sequence(active=True, enroll_on={"kind": "segment", "segment": segment.pk})

    assert services.segments_enroll() == 1
    assert services.segments_enroll() == 0
    assert list(Enrollment.objects.values_list("lead_id", "source")) == [(match.pk, "segment")]

    # A lead joining the segment later is picked up on the next run.
    later = LeadFactory(score=40)
    InteractionFactory(lead=later, type="page_view", properties={"url": "/pricing/teams"})
    assert services.segments_enroll() == 1
    assert set(Enrollment.objects.values_list("lead_id", flat=True)) == {match.pk, later.pk}


def test_a_static_list_can_be_enrolled_too():
    listed = lead_services.segment_create(data={"name": "Booth", "kind": "static"})
    lead = LeadFactory()
    LeadFactory()
    lead_services.segment_members_add(segment=listed, lead_ids=[lead.pk])
    make_sequence(active=True, enroll_on={"kind": "segment", "segment": listed.pk})
    assert services.segments_enroll() == 1
    assert list(Enrollment.objects.values_list("lead_id", flat=True)) == [lead.pk]


def test_a_deleted_segment_enrols_nobody():
    segment = _pricing_visitors()
    lead = LeadFactory(score=30)
    InteractionFactory(lead=lead, type="page_view", properties={"url": "/pricing"})
    make_sequence(active=True, enroll_on={"kind": "segment", "segment": segment.pk})
    lead_services.segment_delete(segment=segment)
    assert services.segments_enroll() == 0
    assert not Enrollment.objects.exists()


def test_the_api_takes_a_saved_segment_and_refuses_an_unknown_one(marketer_client):
    segment = _pricing_visitors()
    body = {"name": "Nurture pricing", "active": True, "steps": WELCOME_STEPS}
    created = marketer_client.post(
        "/api/v1/sequences/", {**body, "enroll_on": {"kind": "segment", "segment": segment.pk}}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["enroll_on"] == {"kind": "segment", "segment": segment.pk}
    for enroll_on, message in [
        ({"kind": "segment", "segment": 999999}, "No segment with id 999999."),
        ({"kind": "segment", "segment": "pricing"}, "'segment' must be the id of a saved segment"),
        ({"kind": "segment", "segment": segment.pk, "stage": "mql"}, "A saved segment trigger is"),
    ]:
        refused = marketer_client.post(
            "/api/v1/sequences/", {**body, "name": "X", "enroll_on": enroll_on}, format="json"
        )
        assert refused.status_code == 400
        assert message in str(refused.json()), refused.json()
    assert Sequence.objects.count() == 1


def test_the_older_inline_spec_still_enrols(marketer_client):
    response = marketer_client.post(
        "/api/v1/sequences/",
        {
            "name": "Inline",
            "active": True,
            "steps": WELCOME_STEPS,
            "enroll_on": {"kind": "segment", "stage": "visitor", "min_score": 20},
        },
        format="json",
    )
    assert response.status_code == 201
    match = LeadFactory(score=25)
    LeadFactory(score=5)
    assert services.segments_enroll() == 1
    assert list(Enrollment.objects.values_list("lead_id", flat=True)) == [match.pk]


def test_the_sequence_editor_picks_a_saved_segment_from_a_menu(marketer_web):
    segment = _pricing_visitors()
    page = marketer_web.get("/sequences/new/").content.decode()
    assert f'<option value="{segment.pk}">Pricing visitors</option>' in page
    assert "Older inline filter" not in page  # no JSON to type for a new sequence
    data = {
        "name": "By segment",
        "active": "on",
        "stop_on_handoff": "on",
        "reenroll": "never",
        "enroll_kind": "segment",
        "enroll_saved_segment": str(segment.pk),
        "step_kind": ["wait"],
        "step_subject": [""],
        "step_body": [""],
        "step_amount": ["1"],
        "step_unit": ["days"],
        "step_condition": [""],
        "step_goto": [""],
        "step_else_goto": [""],
        "step_action": [""],
        "step_params": [""],
    }
    response = marketer_web.post("/sequences/new/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    sequence = Sequence.objects.get(name="By segment")
    assert sequence.enroll_on == {"kind": "segment", "segment": segment.pk}
    edit = marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    assert f'<option value="{segment.pk}" selected>Pricing visitors</option>' in edit

import pytest
from django.utils import timezone

from leadfunnel.models import OutboxMessage
from leadfunnel.outbox import outbox_dispatch
from leads.services import interaction_record, lead_change_stage
from nurturing import services
from nurturing.models import Enrollment
from tests.factories import FormFactory, LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = pytest.mark.django_db


def _deliver(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        pass
    outbox_dispatch()


def test_a_form_submission_enrols_the_lead_in_the_sequence_for_that_form_once(anon_client):
    form = FormFactory(slug="ebook")
    FormFactory(slug="other")
    sequence = make_sequence(enroll_on={"kind": "form_submitted", "form": "ebook"})
    make_sequence(name="Other form", enroll_on={"kind": "form_submitted", "form": "other"})

    for _ in range(2):
        response = anon_client.post(f"/api/v1/forms/{form.slug}/submit/", {"email": "Ana@Acme.example"}, format="json")
        assert response.status_code == 201
    outbox_dispatch()

    [enrollment] = Enrollment.objects.all()
    assert enrollment.sequence == sequence and enrollment.lead.email == "ana@acme.example"
    assert enrollment.source == "form:ebook" and enrollment.status == "active"


def test_entering_recycled_enrols_in_re_nurture_and_handoff_exits_other_sequences(sales_rep):
    welcome = make_sequence(name="Welcome")
    renurture = make_sequence(name="Re-nurture", enroll_on={"kind": "stage_entered", "stage": "recycled"})
    keep = make_sequence(name="Keeps going", stop_on_handoff=False)
    lead = LeadFactory()
    services.enrollments_create(sequence=welcome, lead_ids=[lead.pk])
    services.enrollments_create(sequence=keep, lead_ids=[lead.pk])

    lead_change_stage(lead=lead, to_stage="mql", cause="rule")
    outbox_dispatch()

    statuses = dict(Enrollment.objects.values_list("sequence__name", "exit_reason"))
    assert statuses == {"Welcome": "handoff", "Keeps going": ""}

    lead_change_stage(lead=lead, to_stage="recycled", cause="user", reason="not now")
    outbox_dispatch()
    assert Enrollment.objects.get(sequence=renurture).status == "active"
    assert Enrollment.objects.get(sequence=renurture).source == "stage:recycled"


def test_disqualification_exits_every_sequence():
    one, two = make_sequence(name="One", stop_on_handoff=False), make_sequence(name="Two")
    lead = LeadFactory()
    for sequence in (one, two):
        services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    lead_change_stage(lead=lead, to_stage="disqualified", cause="user", reason="spam")
    outbox_dispatch()

    assert set(Enrollment.objects.values_list("status", "exit_reason")) == {("exited", "disqualified")}


def test_an_interaction_goal_since_enrolment_exits_with_goal_reached_and_publishes_it():
    sequence = make_sequence(
        goals=[{"interaction_type": "content_download", "property": "asset", "operator": "equals", "value": "roi"}]
    )
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    interaction_record(type="content_download", lead=lead.pk, properties={"asset": "other"})
    outbox_dispatch()
    assert Enrollment.objects.get().status == "active"

    interaction_record(type="content_download", lead=lead.pk, properties={"asset": "ROI"})
    outbox_dispatch()

    enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.exit_reason) == ("goal_reached", "goal")
    assert enrollment.goal["index"] == 1
    event = OutboxMessage.objects.get(topic="sequence.goal_reached")
    assert event.payload == {
        "enrollment_id": enrollment.pk,
        "sequence_id": sequence.pk,
        "lead_id": lead.pk,
        "goal": sequence.goals[0],
    }


def test_a_stage_goal_counts_as_goal_reached_rather_than_handoff(sales_rep):
    sequence = make_sequence(goals=[{"stage": "mql"}])
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    lead_change_stage(lead=lead, to_stage="mql", cause="rule")
    outbox_dispatch()

    assert Enrollment.objects.get().status == "goal_reached"


def test_an_unsubscribe_recorded_by_an_integration_ends_nurturing():
    sequence = make_sequence()
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])

    interaction_record(type="unsubscribe", lead=lead.pk, occurred_at=timezone.now())
    outbox_dispatch()

    assert Enrollment.objects.get().exit_reason == "unsubscribed"


def test_segment_enrolment_picks_matching_leads_once():
    make_sequence(
        enroll_on={"kind": "segment", "stage": "visitor", "min_score": 20, "fields": {"industry": "software"}}
    )
    match = LeadFactory(score=30, industry="Software")
    LeadFactory(score=10, industry="Software")
    LeadFactory(score=30, industry="Retail")

    assert services.segments_enroll() == 1
    assert services.segments_enroll() == 0
    assert list(Enrollment.objects.values_list("lead_id", "source")) == [(match.pk, "segment")]

import pytest

from leadfunnel.models import AuditEvent
from leads.models import StageTransition
from nurturing import services
from nurturing.models import Enrollment, Sequence, Step
from tests.factories import CompanyFactory, LeadFactory
from tests.nurturing.helpers import WELCOME_STEPS, make_sequence

pytestmark = pytest.mark.django_db

URL = "/api/v1/sequences/"


def _payload(**overrides):
    return {
        "name": "Welcome",
        "enroll_on": {"kind": "manual"},
        "goals": [{"interaction_type": "demo_request"}, {"stage": "sql"}],
        "steps": WELCOME_STEPS,
        **overrides,
    }


def test_a_marketer_creates_a_sequence_with_ordered_steps_and_it_is_audited(marketer_client, marketer):
    response = marketer_client.post(URL, _payload(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert [s["kind"] for s in body["steps"]] == ["email", "wait", "email"]
    assert body["steps"][1] == {"position": 2, "kind": "wait", "days": 2}
    assert body["steps"][0]["subject"] == "Welcome, {{ lead.first_name }}"
    sequence = Sequence.objects.get(pk=body["id"])
    assert list(sequence.steps.values_list("position", "kind")) == [(1, "email"), (2, "wait"), (3, "email")]
    audit = AuditEvent.objects.get(action="sequence.created")
    assert audit.actor == marketer and audit.object_id == str(sequence.pk)


def test_sales_reps_and_anonymous_callers_cannot_touch_sequences(sales_client, anon_client):
    sequence = make_sequence()
    assert sales_client.get(URL).status_code == 403
    assert sales_client.post(URL, _payload(), format="json").status_code == 403
    assert sales_client.get(f"{URL}{sequence.pk}/stats/").status_code == 403
    assert anon_client.get(URL).status_code in (401, 403)
    assert Sequence.objects.count() == 1


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"kind": "email", "subject": "Hi {{ lead.salary }}", "body": "<p>x</p>"}, "Unknown merge field"),
        ({"kind": "email", "subject": "Hi", "body": "<p>{% load secrets %}</p>"}, "tags"),
        ({"kind": "email", "subject": "Hi", "body": "<p>Hi<script>alert(1)</script></p>"}, "<script>"),
        ({"kind": "email", "subject": "Hi", "body": '<img src="x" onerror="alert(1)">'}, "onerror"),
        ({"kind": "email", "subject": "Hi", "body": '<a href="javascript:alert(1)">x</a>'}, "javascript"),
        ({"kind": "email", "subject": "Hi", "body": '<a href=" JaVaScRiPt:alert(1)">x</a>'}, "javascript"),
        ({"kind": "sms", "body": "Hi {{ lead.password }}"}, "Unknown merge field"),
        ({"kind": "wait"}, "exactly one of minutes"),
        ({"kind": "action", "action": "launch_rockets"}, "Unknown action"),
        ({"kind": "action", "action": "set_stage", "stage": "king"}, "set_stage needs"),
    ],
)
def test_unsafe_or_unknown_template_content_is_rejected_with_a_clear_message(marketer_client, step, message):
    response = marketer_client.post(URL, _payload(steps=[step]), format="json")

    assert response.status_code == 400
    body = response.json()
    assert message in body["message"], body
    assert body["message"].startswith("Step 1:")
    assert "1" in body["errors"]["steps"]
    assert Sequence.objects.count() == 0 and Step.objects.count() == 0


def test_a_loop_of_branches_without_a_wait_is_rejected(marketer_client):
    steps = [
        {"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"},
        {"kind": "branch", "condition": {"field": "score", "operator": "lte", "value": 30}, "goto": 1},
        {"kind": "email", "subject": "Bye", "body": "<p>Bye</p>"},
    ]
    response = marketer_client.post(URL, _payload(steps=steps), format="json")

    assert response.status_code == 400
    assert "loop without a wait" in response.json()["message"]
    assert "1 → 2 → 1" in response.json()["message"]
    assert Sequence.objects.count() == 0

    steps.insert(0, {"kind": "wait", "days": 1})
    steps[2]["goto"] = 1
    assert marketer_client.post(URL, _payload(steps=steps), format="json").status_code == 201


def test_bad_enrolment_triggers_and_goals_are_400s(marketer_client):
    bad = [
        {"enroll_on": {"kind": "form_submitted", "form": "no-such-form"}},
        {"enroll_on": {"kind": "stage_entered", "stage": "heaven"}},
        {"enroll_on": {"kind": "segment", "min_score": 500}},
        {"goals": [{"interaction_type": "telepathy"}]},
        {"goals": [{"field": "score", "operator": "gte"}]},
        {"send_window_start": "09:00"},
        {"enroll_on": "always"},
    ]
    for overrides in bad:
        response = marketer_client.post(URL, _payload(**overrides), format="json")
        assert response.status_code == 400, overrides
        assert response.json()["message"]
    assert Sequence.objects.count() == 0


def test_updating_steps_keeps_positions_and_deactivating_pauses_enrolments(marketer_client):
    sequence = make_sequence()
    lead = LeadFactory()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    new_steps = [{"kind": "email", "subject": "New hello", "body": "<p>Hello</p>"}]

    response = marketer_client.patch(f"{URL}{sequence.pk}/", {"steps": new_steps, "active": False}, format="json")

    assert response.status_code == 200, response.json()
    assert [s["subject"] for s in response.json()["steps"]] == ["New hello"]
    assert Step.objects.filter(sequence=sequence).count() == 1
    assert Enrollment.objects.get(lead=lead).next_due_at is None
    audit = AuditEvent.objects.get(action="sequence.updated")
    assert set(audit.changes) == {"steps", "active"}

    marketer_client.patch(f"{URL}{sequence.pk}/", {"active": True}, format="json")
    assert Enrollment.objects.get(lead=lead).next_due_at is not None


def test_a_sequence_with_enrolments_cannot_be_deleted_but_an_empty_one_can(marketer_client):
    used, unused = make_sequence(name="Used"), make_sequence(name="Unused")
    services.enrollments_create(sequence=used, lead_ids=[LeadFactory().pk])

    assert marketer_client.delete(f"{URL}{used.pk}/").status_code == 409
    assert marketer_client.delete(f"{URL}{unused.pk}/").status_code == 204
    assert list(Sequence.objects.values_list("name", flat=True)) == ["Used"]


def test_enrolling_by_hand_once_then_409_and_in_bulk_by_ids_or_filter(marketer_client):
    sequence = make_sequence()
    lead = LeadFactory()
    url = f"{URL}{sequence.pk}/enrollments/"

    first = marketer_client.post(url, {"lead": lead.pk}, format="json")
    again = marketer_client.post(url, {"lead": lead.pk}, format="json")

    assert first.status_code == 201
    assert first.json()["status"] == "active" and first.json()["current_step"] == 1
    assert first.json()["next_due_at"]
    assert again.status_code == 409 and "already" in again.json()["message"]
    assert Enrollment.objects.filter(lead=lead).count() == 1

    recycled = LeadFactory.create_batch(3, stage="recycled")
    LeadFactory(stage="recycled", unsubscribed_at="2026-01-01T00:00:00Z")
    bulk = marketer_client.post(url, {"leads": [lead.pk, recycled[0].pk]}, format="json")
    assert bulk.status_code == 200 and bulk.json() == {"enrolled": 1, "skipped": 1}
    by_filter = marketer_client.post(url, {"filter": {"stage": "recycled"}}, format="json")
    assert by_filter.json() == {"enrolled": 2, "skipped": 2}
    assert Enrollment.objects.filter(sequence=sequence).count() == 4

    listing = marketer_client.get(url).json()
    assert listing["count"] == 4
    assert {"status", "current_step", "next_due_at", "lead"} <= set(listing["results"][0])
    assert marketer_client.post(url, {}, format="json").status_code == 400
    assert marketer_client.post(url, {"lead": 999999}, format="json").status_code == 400
    assert marketer_client.post(url, {"filter": {"colour": "red"}}, format="json").status_code == 400


def test_the_reenrolment_policy_is_respected(marketer_client):
    never = make_sequence(name="Never")
    after_exit = make_sequence(name="After exit", reenroll="after_exit")
    lead = LeadFactory()
    for sequence in (never, after_exit):
        services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    services.enrollments_exit(lead_ids=[lead.pk], reason="manual")

    refused = marketer_client.post(f"{URL}{never.pk}/enrollments/", {"lead": lead.pk}, format="json")
    allowed = marketer_client.post(f"{URL}{after_exit.pk}/enrollments/", {"lead": lead.pk}, format="json")

    assert refused.status_code == 409 and "re-enrolment policy" in refused.json()["message"]
    assert allowed.status_code == 201
    assert Enrollment.objects.filter(lead=lead, sequence=after_exit).count() == 2


def test_stats_count_sends_opens_clicks_exits_and_later_stage_changes(marketer_client, sales_rep):
    from leads.services import lead_change_stage
    from nurturing.models import Message

    sequence = make_sequence()
    leads = LeadFactory.create_batch(3)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    services.process_due_steps(batch_size=10)
    first = Message.objects.get(lead=leads[0])
    services.message_record_open(message=first)
    services.message_record_click(message=first, index=0)
    lead_change_stage(lead=leads[0], to_stage="mql", cause="rule")
    services.enrollments_exit(lead_ids=[leads[0].pk], reason="handoff")
    services.lead_unsubscribe(lead=leads[1])
    StageTransition.objects.create(lead=leads[2], from_stage="visitor", to_stage="sql", at="2020-01-01T00:00:00Z")

    body = marketer_client.get(f"{URL}{sequence.pk}/stats/").json()

    assert body["enrolled"] == 3 and body["active"] == 1 and body["exited"] == 2
    assert body["exited_by_reason"] == {"handoff": 1, "unsubscribed": 1}
    assert body["became"] == {"mql": 1, "sql": 0, "customer": 0}  # the 2020 SQL was before enrolling
    step1, step2, step3 = body["steps"]
    assert (step1["sent"], step1["opened"], step1["clicked"]) == (3, 1, 1)
    assert step1["open_rate"] == round(1 / 3, 4)
    assert step2["executed"] == 3 and step3["active"] == 1
    assert step3["exited"] == {"handoff": 1, "unsubscribed": 1}


def test_stats_read_the_prefetched_steps_four_aggregate_queries(django_assert_num_queries):
    from nurturing import selectors

    sequence = make_sequence()
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in LeadFactory.create_batch(2)])
    services.process_due_steps(batch_size=10)
    sequence = selectors.sequence_get(sequence_id=sequence.pk)  # the steps come prefetched

    # enrolments, later stage changes, executions, message engagement: no query for the steps.
    with django_assert_num_queries(4):
        stats = selectors.sequence_stats(sequence=sequence)

    assert [step["position"] for step in stats["steps"]] == [s.position for s in sequence.steps.all()]
    assert stats["steps"][0]["sent"] == 2


def test_preview_renders_an_email_for_a_sample_lead(marketer_client):
    sequence = make_sequence()
    lead = LeadFactory(first_name="Zoë", company=CompanyFactory(name="Initech & Co"))

    response = marketer_client.get(f"{URL}{sequence.pk}/preview/?lead={lead.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "Welcome, Zoë"
    assert "Initech &amp; Co" in body["html"] and "/t/u/" in body["html"]
    assert body["links"] == ["https://leadfunnel.example/guide"]
    assert marketer_client.get(f"{URL}{sequence.pk}/preview/?lead=abc").status_code == 400
    assert marketer_client.get(f"{URL}{sequence.pk}/preview/?lead=999999").status_code == 404
    assert marketer_client.get(f"{URL}{sequence.pk}/preview/?step=2").status_code == 400
    assert marketer_client.get(f"{URL}999999/preview/").status_code == 404


def test_the_schema_documents_the_sequence_endpoints(admin_client_api):
    response = admin_client_api.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/sequences/",
        "/api/v1/sequences/{sequence_id}/",
        "/api/v1/sequences/{sequence_id}/enrollments/",
        "/api/v1/sequences/{sequence_id}/stats/",
        "/api/v1/sequences/{sequence_id}/preview/",
    ):
        assert path in paths

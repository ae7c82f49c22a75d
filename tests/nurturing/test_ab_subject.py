"""A/B test of an email step's subject: deterministic split, test group, winner by click rate, stats."""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nurturing import services
from nurturing.abtest import variant_for, winner_by_click_rate
from nurturing.models import Enrollment, Message, Sequence, Step
from tests.dashboard.test_marketing_pages import SEQUENCE
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = pytest.mark.django_db

AB_STEP = {
    "kind": "email",
    "subject": "A: pricing for {{ lead.first_name }}",
    "subject_b": "B: {{ lead.first_name }}, your price inside",
    "body": "Hi,\n\nprices: https://leadfunnel.example/pricing",
    "ab_test_size": 10,
    "ab_wait_hours": 1,
}


def _enrol(sequence, n):
    leads = LeadFactory.create_batch(n)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    return leads


def test_the_split_is_a_stable_function_of_enrolment_and_step_and_honours_the_share():
    assert all(
        variant_for(enrollment_id=i, step_id=7, split=30) == variant_for(enrollment_id=i, step_id=7, split=30)
        for i in range(200)
    )
    shares = Counter(variant_for(enrollment_id=i, step_id=7, split=30) for i in range(4000))
    assert 0.27 < shares["b"] / 4000 < 0.33
    assert {variant_for(enrollment_id=i, step_id=7, split=1) for i in range(50)} <= {"a", "b"}


def test_the_winner_is_the_higher_click_rate_and_a_tie_keeps_a():
    assert winner_by_click_rate({"a": {"sent": 10, "clicked": 1}, "b": {"sent": 4, "clicked": 1}}) == "b"
    assert winner_by_click_rate({"a": {"sent": 10, "clicked": 5}, "b": {"sent": 10, "clicked": 2}}) == "a"
    assert winner_by_click_rate({"a": {"sent": 5, "clicked": 1}, "b": {"sent": 5, "clicked": 1}}) == "a"
    assert winner_by_click_rate({}) == "a"


def test_the_test_group_gets_both_subjects_then_the_winner_by_clicks_goes_to_the_rest(marketer_client):
    sequence = make_sequence(steps=[AB_STEP])
    step = Step.objects.get(sequence=sequence)
    _enrol(sequence, 30)
    now = timezone.now()

    services.process_due_steps(batch_size=100, now=now)

    test_group = list(Message.objects.filter(sequence=sequence).select_related("execution"))
    assert len(test_group) == len(mail.outbox) == 10
    for message in test_group:
        expected = variant_for(enrollment_id=message.execution.enrollment_id, step_id=step.pk, split=50)
        assert message.variant == expected
        assert message.subject.startswith("B: " if expected == "b" else "A: ")
    assert {m.variant for m in test_group} == {"a", "b"}
    held = Enrollment.objects.filter(sequence=sequence, current_step=1)
    assert held.count() == 20 and all(e.next_due_at > now for e in held)

    # Clicks: every B message is clicked, one A message.
    b_messages = [m for m in test_group if m.variant == "b"]
    a_messages = [m for m in test_group if m.variant == "a"]
    for message in [*b_messages, a_messages[0]]:
        services.message_record_click(message=message, index=0)
    # Before the wait for clicks is over, nothing is decided and nobody else is sent to.
    services.process_due_steps(batch_size=100, now=now + timedelta(minutes=30))
    step.refresh_from_db()
    assert step.ab_winner == "" and Message.objects.filter(sequence=sequence).count() == 10

    services.process_due_steps(batch_size=100, now=now + timedelta(hours=1, minutes=1))

    step.refresh_from_db()
    assert step.ab_winner == "b" and step.ab_decided_at is not None
    rest = Message.objects.filter(sequence=sequence).exclude(pk__in=[m.pk for m in test_group])
    assert rest.count() == 20
    assert set(rest.values_list("variant", flat=True)) == {"b"}
    assert all(s.startswith("B: ") for s in rest.values_list("subject", flat=True))

    stats = marketer_client.get(f"/api/v1/sequences/{sequence.pk}/stats/").json()
    ab = stats["steps"][0]["ab"]
    assert ab["winner"] == "b" and ab["test_size"] == 10 and ab["split"] == 50
    assert ab["variants"]["a"]["sent"] == len(a_messages) and ab["variants"]["a"]["clicked"] == 1
    assert ab["variants"]["b"]["sent"] == len(b_messages) + 20 and ab["variants"]["b"]["clicked"] == len(b_messages)
    assert ab["variants"]["a"]["click_rate"] == round(1 / len(a_messages), 4)
    assert ab["variants"]["b"]["subject"] == AB_STEP["subject_b"]


def test_a_step_without_a_second_subject_has_no_variant_and_no_ab_stats(marketer_client):
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "Hello"}])
    _enrol(sequence, 3)
    services.process_due_steps(batch_size=10)

    assert set(Message.objects.values_list("variant", flat=True)) == {""}
    assert marketer_client.get(f"/api/v1/sequences/{sequence.pk}/stats/").json()["steps"][0]["ab"] is None


def test_an_ab_batch_adds_one_aggregate_query_whatever_its_size():
    warm = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "Hello"}], name="Warm-up")
    _enrol(warm, 1)
    services.process_due_steps(batch_size=100)  # warm-up: the scoring app installs its default rules

    def run(n, steps):
        sequence = make_sequence(steps=steps, name=f"Run {n} {len(steps[0])}")
        _enrol(sequence, n)
        with CaptureQueriesContext(connection) as ctx:
            services.process_due_steps(batch_size=100)
        assert Message.objects.filter(sequence=sequence).count() == n
        return len(ctx.captured_queries)

    plain = [{"kind": "email", "subject": "Hi", "body": "Hello https://a.example"}]
    tested = [{**AB_STEP, "ab_test_size": 1000}]
    assert run(5, tested) == run(25, tested) == run(25, plain) + 2  # + lock the step, count its messages


def test_changing_the_subjects_starts_the_test_again(marketer_client):
    sequence = make_sequence(steps=[AB_STEP])
    Step.objects.filter(sequence=sequence).update(ab_winner="b", ab_decided_at=timezone.now())
    url = f"/api/v1/sequences/{sequence.pk}/"

    response = marketer_client.patch(url, {"steps": [{**AB_STEP, "subject_b": "New B"}]}, format="json")

    assert response.status_code == 200
    assert response.json()["steps"][0]["subject_b"] == "New B" and response.json()["steps"][0]["ab_test_size"] == 10
    step = Step.objects.get(sequence=sequence)
    assert step.ab_winner == "" and step.ab_decided_at is None and step.ab_started_at is not None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ab_split": 0}, "ab_split: must be a whole number from 1 to 99."),
        ({"ab_test_size": "many"}, "ab_test_size: must be a whole number"),
        ({"subject_b": "Hi {{ lead.salary }}"}, "subject_b: Unknown merge field"),
        ({"subject_b": ""}, "ab_test_size: an A/B test needs subject_b"),
    ],
)
def test_bad_ab_settings_are_a_400_naming_the_field_and_nothing_is_stored(marketer_client, changes, message):
    response = marketer_client.post(
        "/api/v1/sequences/", {"name": "AB", "steps": [{**AB_STEP, **changes}]}, format="json"
    )

    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not Sequence.objects.exists()


def test_the_step_editor_sets_up_the_test_and_the_sequence_page_shows_it(client, marketer):
    client.force_login(marketer)
    data = {
        **SEQUENCE,
        "step_subject_b": ["Second subject {{ lead.first_name }}", "", ""],
        "step_ab_split": ["30", "", ""],
        "step_ab_test_size": ["200", "", ""],
        "step_ab_wait_hours": ["", "", ""],
    }

    response = client.post("/sequences/new/", data)

    assert response.status_code == 302
    sequence = Sequence.objects.get()
    first, _, third = Step.objects.filter(sequence=sequence).order_by("position")
    assert first.config["subject_b"] == "Second subject {{ lead.first_name }}"
    assert first.config["ab_split"] == 30 and first.config["ab_test_size"] == 200
    assert "ab_wait_hours" not in first.config and "subject_b" not in third.config
    edit = client.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    assert 'name="step_subject_b" value="Second subject {{ lead.first_name }}"' in edit
    assert 'name="step_ab_split" type="number" min="1" max="99" value="30"' in edit
    Step.objects.filter(pk=first.pk).update(ab_winner="b")
    page = client.get(f"/sequences/{sequence.pk}/").content.decode()
    assert "A/B subject test · 30% on B · test group 200 sends" in page and "B won" in page

    bad = client.post("/sequences/new/", {**data, "name": "Bad", "step_ab_split": ["100", "", ""]})
    assert bad.status_code == 400
    assert "Step 1: ab_split: must be a whole number from 1 to 99." in bad.content.decode()
    assert Sequence.objects.count() == 1


def test_the_preview_shows_both_subjects_of_a_test(marketer_client):
    sequence = make_sequence(steps=[AB_STEP])
    lead = LeadFactory(first_name="Dana")

    preview = marketer_client.get(f"/api/v1/sequences/{sequence.pk}/preview/?lead={lead.pk}").json()

    assert preview["subject"] == "A: pricing for Dana" and preview["subject_b"] == "B: Dana, your price inside"

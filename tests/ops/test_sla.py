"""SLA enforcement with a frozen clock: breach → notify rep and manager → reassign to the next rep."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from leadfunnel.models import AuditEvent, LeadAssignment, Notification
from leadfunnel.outbox import outbox_dispatch
from leads.models import SalesRepProfile
from leads.services import lead_change_stage
from leads.sla import sla_enforce
from tests.factories import LeadFactory, UserFactory

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def manager(db):
    return UserFactory(username="mona", email="mona@leadfunnel.example")


@pytest.fixture
def team(sales_rep, other_rep, manager):
    SalesRepProfile.objects.create(user=sales_rep, manager=manager)
    SalesRepProfile.objects.create(user=other_rep, manager=manager)
    return sales_rep, other_rep


def run(capture, func, **kwargs):
    """Run and then fire what was queued for after commit (notification sending)."""
    with capture(execute=True):
        return func(**kwargs)


def subjects(to: str) -> list[str]:
    return [m.subject for m in mail.outbox if to in m.to]


@pytest.mark.django_db
def test_unanswered_mql_is_breached_notified_then_reassigned(
    team, manager, settings, django_capture_on_commit_callbacks
):
    sam, sasha = team
    settings.SLA_REASSIGN_AFTER_HOURS = 4
    lead = LeadFactory(email="ann@acme.example", first_name="Ann", last_name="Lee")
    with time_machine.travel(T0, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sam)
        run(django_capture_on_commit_callbacks, outbox_dispatch)
    lead.refresh_from_db()
    due = lead.sla_due_at
    assert lead.owner == sam and due > T0
    assert subjects(sam.email) == ["New MQL for you: Ann Lee"]

    # One minute before the deadline: nothing happens.
    with time_machine.travel(due - timedelta(minutes=1), tick=False):
        assert run(django_capture_on_commit_callbacks, sla_enforce) == {"breached": 0, "reassigned": 0}

    # Past the deadline: breached, rep and manager told (once, however often the sweep runs).
    breach_time = due + timedelta(minutes=1)
    with time_machine.travel(breach_time, tick=False):
        assert run(django_capture_on_commit_callbacks, sla_enforce) == {"breached": 1, "reassigned": 0}
        assert run(django_capture_on_commit_callbacks, sla_enforce) == {"breached": 0, "reassigned": 0}
    lead.refresh_from_db()
    assert lead.sla_breached_at == breach_time
    assert lead.owner == sam
    assert subjects(sam.email)[-1].startswith("SLA breached: Ann Lee")
    assert len(subjects(manager.email)) == 1 and subjects(manager.email)[0].startswith("SLA breached")
    assert Notification.objects.filter(kind="sla_breached").count() == 2
    assert Notification.objects.filter(kind="sla_breached", sent_at__isnull=True).count() == 0

    # Still inside the grace period: stays with sam.
    with time_machine.travel(breach_time + timedelta(hours=4) - timedelta(minutes=1), tick=False):
        assert run(django_capture_on_commit_callbacks, sla_enforce)["reassigned"] == 0
    assert not LeadAssignment.objects.exists()

    # After the grace period: reassigned to the next rep, with history, fresh deadline, notices.
    move_time = breach_time + timedelta(hours=4, minutes=1)
    with time_machine.travel(move_time, tick=False):
        assert run(django_capture_on_commit_callbacks, sla_enforce) == {"breached": 0, "reassigned": 1}
        assert run(django_capture_on_commit_callbacks, sla_enforce) == {"breached": 0, "reassigned": 0}
    lead.refresh_from_db()
    assert lead.owner == sasha
    assert lead.stage == "mql"
    assert lead.assigned_at == move_time
    assert lead.sla_due_at == move_time + (due - T0)
    assert lead.sla_breached_at is None
    assert lead.sla_escalated_at == move_time
    assignment = LeadAssignment.objects.get()
    assert (assignment.lead, assignment.from_owner, assignment.to_owner, assignment.cause) == (lead, sam, sasha, "sla")
    assert assignment.at == move_time and "No response within the SLA" in assignment.reason
    assert AuditEvent.objects.filter(action="lead.reassigned", object_id=str(lead.pk)).count() == 1
    assert SalesRepProfile.objects.get(user=sasha).last_assigned_at == move_time
    assert subjects(sasha.email) == ["Lead reassigned to you: Ann Lee (ann@acme.example)"]
    assert subjects(sam.email)[-1] == "Lead reassigned away: Ann Lee (ann@acme.example)"
    # The lead's stage history is unchanged: reassignment is not a stage change.
    assert list(lead.transitions.values_list("to_stage", flat=True)) == ["mql"]


@pytest.mark.django_db
def test_a_lead_answered_in_time_is_never_breached(team, django_capture_on_commit_callbacks):
    sam, _ = team
    lead = LeadFactory()
    with time_machine.travel(T0, tick=False):
        lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sam)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        lead_change_stage(lead=lead, to_stage="sal", cause="user", actor=sam)
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        assert run(django_capture_on_commit_callbacks, sla_enforce) == {"breached": 0, "reassigned": 0}
    lead.refresh_from_db()
    assert lead.sla_breached_at is None and lead.owner == sam


@pytest.mark.django_db
def test_no_reassignment_when_every_other_rep_is_away(team, settings, django_capture_on_commit_callbacks):
    sam, sasha = team
    SalesRepProfile.objects.filter(user=sasha).update(is_away=True)
    lead = LeadFactory()
    with time_machine.travel(T0, tick=False):
        lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sam)
    lead.refresh_from_db()
    with time_machine.travel(lead.sla_due_at + timedelta(minutes=1), tick=False):
        run(django_capture_on_commit_callbacks, sla_enforce)
    with time_machine.travel(
        lead.sla_due_at + timedelta(hours=settings.SLA_REASSIGN_AFTER_HOURS, minutes=2), tick=False
    ):
        assert run(django_capture_on_commit_callbacks, sla_enforce)["reassigned"] == 0
    lead.refresh_from_db()
    assert lead.owner == sam and lead.sla_breached_at is not None
    assert not LeadAssignment.objects.exists()


@pytest.mark.django_db
def test_notifications_are_sent_exactly_once(team, django_capture_on_commit_callbacks):
    from leadfunnel.notifications import notification_create, notification_send

    sam, _ = team
    with django_capture_on_commit_callbacks(execute=True):
        created = notification_create(recipients=[sam], kind="sla_breached", subject="Hi", body="b", dedupe_key="k1")
        again = notification_create(recipients=[sam], kind="sla_breached", subject="Hi", body="b", dedupe_key="k1")
    assert len(created) == 1 and again == []
    assert len(mail.outbox) == 1
    assert notification_send(notification_id=created[0].pk) is False
    assert len(mail.outbox) == 1


# --- rep availability API -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_rep_can_mark_themselves_away_but_nothing_else(sales_rep, other_rep, sales_client):
    response = sales_client.patch(f"/api/v1/reps/{sales_rep.pk}/", {"is_away": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["is_away"] is True
    assert SalesRepProfile.objects.get(user=sales_rep).is_away is True
    assert sales_client.patch(f"/api/v1/reps/{sales_rep.pk}/", {"capacity": 5}, format="json").status_code == 403
    assert sales_client.patch(f"/api/v1/reps/{other_rep.pk}/", {"is_away": True}, format="json").status_code == 403
    assert not SalesRepProfile.objects.filter(user=other_rep, is_away=True).exists()
    assert SalesRepProfile.objects.get(user=sales_rep).capacity == 100


@pytest.mark.django_db
def test_admin_sets_capacity_and_manager_and_away_reps_get_no_new_leads(
    sales_rep, other_rep, admin_client_api, manager
):
    from leads.services import rep_pick_next

    response = admin_client_api.patch(
        f"/api/v1/reps/{other_rep.pk}/", {"is_away": True, "capacity": 7, "manager": manager.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    profile = SalesRepProfile.objects.get(user=other_rep)
    assert (profile.is_away, profile.capacity, profile.manager) == (True, 7, manager)
    assert AuditEvent.objects.filter(action="rep.updated", object_id=str(profile.pk)).exists()
    assert rep_pick_next() == sales_rep
    assert rep_pick_next(exclude_user_ids=(sales_rep.pk,)) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status"),
    [({"capacity": -1}, 400), ({"manager": 999999}, 400), ({"colour": "red"}, 400), ({"is_away": "maybe"}, 400)],
)
def test_rep_update_refuses_bad_input(sales_rep, admin_client_api, body, status):
    response = admin_client_api.patch(f"/api/v1/reps/{sales_rep.pk}/", body, format="json")
    assert response.status_code == status
    assert not SalesRepProfile.objects.filter(user=sales_rep).exists()


@pytest.mark.django_db
def test_rep_update_of_a_non_rep_is_404(marketer, admin_client_api):
    assert admin_client_api.patch(f"/api/v1/reps/{marketer.pk}/", {"is_away": True}, format="json").status_code == 404

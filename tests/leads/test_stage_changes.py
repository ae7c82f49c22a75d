"""Changing the stage of many leads at once gives what one lead_change_stage call per lead gives
(reps in round-robin order, capacity and away honoured, SLA, history, outbox), in constant queries."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadfunnel.models import OutboxMessage
from leads.models import Lead, SalesRepProfile, StageTransition
from leads.services import IllegalTransition, StageMove, lead_change_stage, leads_change_stage, rep_pick_next
from tests.factories import LeadFactory, sales_rep

pytestmark = pytest.mark.django_db


@pytest.fixture
def reps():
    """Round-robin order differs from id order: c was assigned longest ago, then a; b never had a
    routing profile; d is away; e is at capacity; f's last assignment is in the future (a clock
    moved back), so it stays behind reps assigned now."""
    long_ago = timezone.now() - timedelta(days=3)
    a = sales_rep("rep-a", last_assigned_at=long_ago + timedelta(hours=1), capacity=3)
    b = sales_rep("rep-b")
    c = sales_rep("rep-c", last_assigned_at=long_ago, capacity=50)
    d = sales_rep("rep-d", is_away=True)
    e = sales_rep("rep-e", capacity=1, last_assigned_at=long_ago - timedelta(days=1))
    f = sales_rep("rep-f", last_assigned_at=timezone.now() + timedelta(days=1), capacity=50)
    LeadFactory(stage="mql", owner=e)  # e's one waiting lead: e is full
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}


def _world():
    """Eight visitors, two recycled leads (second cycle on the way back) and one customer."""
    leads = [LeadFactory() for _ in range(8)] + [LeadFactory(stage="recycled", cycle=1) for _ in range(2)]
    leads.append(LeadFactory(stage="customer"))
    return leads


def _moves(leads) -> list[StageMove]:
    return [
        StageMove(
            lead_id=lead.pk,
            to_stage="pql" if n % 5 == 4 else "mql",
            cause="rule",
            cause_ref=f"rule:{n}",
            reason=f"Score {60 + n} reached the MQL threshold 60.",
            details={"score": 60 + n, "rules": [{"rule": n, "points": 10.0}]},
        )
        for n, lead in enumerate(leads)
    ]


def _observed(leads, since_outbox: int) -> dict:
    """What users and integrations see, with instants turned into orders and differences."""
    rows = {lead.pk: lead for lead in Lead.objects.filter(pk__in=[x.pk for x in leads])}
    transitions = {t.lead_id: t for t in StageTransition.objects.filter(lead_id__in=list(rows))}
    sla = timedelta(hours=24)
    per_lead = {}
    for lead_id, lead in rows.items():
        t = transitions.get(lead_id)
        per_lead[lead_id] = {
            "stage": lead.stage,
            "cycle": lead.cycle,
            "owner": lead.owner_id,
            "assigned": lead.assigned_at is not None,
            "sla_due_in": (lead.sla_due_at - lead.assigned_at) if lead.sla_due_at else None,
            "marks": (lead.sla_breached_at, lead.sla_escalated_at, lead.first_response_at),
            "changed_at_is_transition_at": t is not None and lead.stage_changed_at == t.at == lead.assigned_at
            if lead.owner_id
            else t is not None and lead.stage_changed_at == t.at,
            "transition": None
            if t is None
            else (t.from_stage, t.to_stage, t.cause, t.cause_ref, t.reason, t.reason_code, t.cycle, t.owner_id)
            + (t.details, t.actor_id),
        }
        assert per_lead[lead_id]["sla_due_in"] in (None, sla)
    outbox = []
    for m in OutboxMessage.objects.filter(pk__gt=since_outbox).order_by("pk"):
        payload = dict(m.payload)
        t = StageTransition.objects.get(pk=payload.pop("transition_id"))
        assert payload.pop("at") == t.at.isoformat()
        if m.topic == "lead.assigned":
            assert payload.pop("sla_due_at") == (t.at + sla).isoformat()
        outbox.append((m.topic, t.lead_id, payload))
    profiles = SalesRepProfile.objects.order_by("last_assigned_at", "user_id")
    return {
        "leads": per_lead,
        "outbox": outbox,
        "round_robin": [p.user_id for p in profiles if p.last_assigned_at is not None],
        "profiles": sorted(p.user_id for p in profiles),
        "next_rep": getattr(rep_pick_next(), "pk", None),
    }


def _last_outbox() -> int:
    return OutboxMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_promoting_many_leads_at_once_matches_promoting_them_one_by_one(reps):
    leads = _world()
    promotions = _moves(leads)
    start = _last_outbox()

    with transaction.atomic():
        for p in promotions:
            try:
                lead_change_stage(
                    lead=p.lead_id,
                    to_stage=p.to_stage,
                    cause=p.cause,
                    cause_ref=p.cause_ref,
                    reason=p.reason,
                    details=p.details,
                )
            except Exception:  # noqa: S112 - the customer cannot move back to MQL
                continue
        one_by_one = _observed(leads, start)
        transaction.set_rollback(True)

    result = leads_change_stage(moves=promotions)
    at_once = _observed(leads, start)

    assert at_once == one_by_one
    # The world is not trivial: reps in round-robin order, capacity and away honoured, a
    # profile made for the rep who had none, the customer left alone, recycled leads in cycle 2.
    owners = [at_once["leads"][lead.pk]["owner"] for lead in leads[:10]]
    a, b, c = reps["a"].pk, reps["b"].pk, reps["c"].pk
    assert owners == [b, c, a, b, c, a, b, c, a, b]  # b (never assigned), then c, a; e full, d away
    assert reps["d"].pk not in owners and reps["e"].pk not in owners and reps["f"].pk not in owners
    assert at_once["round_robin"][-4:] == [c, a, b, reps["f"].pk]
    assert b in at_once["profiles"]
    assert [at_once["leads"][lead.pk]["cycle"] for lead in leads[8:10]] == [2, 2]
    assert at_once["leads"][leads[-1].pk]["stage"] == "customer"
    assert set(result.transitions) == {lead.pk for lead in leads[:10]}
    assert list(result.skipped) == [leads[-1].pk]
    topics = [topic for topic, _, _ in at_once["outbox"]]
    assert topics.count("lead.stage_changed") == 10
    assert topics.count("lead.assigned") == sum(1 for lead in leads[:10] if at_once["leads"][lead.pk]["owner"])


def test_capacity_fills_up_within_one_call(reps):
    leads = [LeadFactory() for _ in range(10)]
    SalesRepProfile.objects.filter(user=reps["c"]).update(capacity=2)
    SalesRepProfile.objects.create(user=reps["b"], capacity=1)
    leads_change_stage(moves=[StageMove(lead_id=x.pk, to_stage="mql", cause="rule") for x in leads])
    owners = list(Lead.objects.filter(pk__in=[x.pk for x in leads]).order_by("pk").values_list("owner_id", flat=True))
    # b has room for 1, c for 2, a for 3, f (last in the queue) for the rest.
    assert owners.count(reps["b"].pk) == 1 and owners.count(reps["c"].pk) == 2 and owners.count(reps["a"].pk) == 3
    assert owners[6:] == [reps["f"].pk] * 4
    SalesRepProfile.objects.filter(user=reps["f"]).update(capacity=4)
    more = [LeadFactory() for _ in range(2)]
    leads_change_stage(moves=[StageMove(lead_id=x.pk, to_stage="mql", cause="rule") for x in more])
    # Everyone is full now: the leads wait unassigned (no SLA clock without a rep).
    assert not Lead.objects.filter(pk__in=[x.pk for x in more]).exclude(owner=None, sla_due_at=None).exists()
    assert Lead.objects.filter(pk__in=[x.pk for x in leads + more], stage="mql").count() == 12


def test_expected_stage_is_checked_under_the_lock():
    visitor, moved_on = LeadFactory(), LeadFactory(stage="sal")
    result = leads_change_stage(
        moves=[
            StageMove(lead_id=x.pk, to_stage="mql", cause="rule", expected_from=("visitor",))
            for x in (visitor, moved_on)
        ]
    )
    assert list(result.transitions) == [visitor.pk]
    assert list(result.skipped) == [moved_on.pk] and "cannot move from SAL to MQL" in result.skipped[moved_on.pk]
    moved_on.refresh_from_db()
    assert moved_on.stage == "sal" and not StageTransition.objects.filter(lead=moved_on).exists()


def test_an_illegal_move_is_skipped_in_a_batch_and_refused_alone():
    visitor, customer = LeadFactory(), LeadFactory(stage="customer")
    result = leads_change_stage(
        moves=[StageMove(lead_id=x.pk, to_stage="sal", cause="user") for x in (visitor, customer)]
    )
    assert result.transitions == {}
    assert "cannot move from Visitor" in result.skipped[visitor.pk]
    assert "cannot move any further" in result.skipped[customer.pk]
    with pytest.raises(IllegalTransition):
        lead_change_stage(lead=visitor, to_stage="sal", cause="user")
    assert not StageTransition.objects.filter(lead__in=[visitor, customer]).exists()


def test_the_callers_instances_are_kept_truthful(reps):
    lead = LeadFactory()
    leads_change_stage(moves=[StageMove(lead_id=lead.pk, to_stage="mql", cause="rule")], instances={lead.pk: lead})
    stored = Lead.objects.get(pk=lead.pk)
    for name in ("stage", "cycle", "owner_id", "assigned_at", "sla_due_at", "stage_changed_at"):
        assert getattr(lead, name) == getattr(stored, name), name


def test_query_count_does_not_grow_with_the_number_of_leads(reps):
    from scoring.selectors import scoring_settings_get

    scoring_settings_get()  # the settings row exists (its first use installs the default rules)

    def count(n: int) -> int:
        leads = [LeadFactory() for _ in range(n)]
        moves = [StageMove(lead_id=x.pk, to_stage="mql", cause="rule") for x in leads]
        with CaptureQueriesContext(connection) as ctx:
            # lock, reps, SLA hours, leads UPDATE, rep profiles upsert, transitions INSERT, outbox INSERT
            result = leads_change_stage(moves=moves)
        assert len(result.transitions) == n
        return len(ctx.captured_queries)

    assert count(2) == count(40) <= 8

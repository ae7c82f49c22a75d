"""The same events, recorded one at a time or as one batch, leave the same rows: leads (new ones
for unknown emails), stage history, reps and their round-robin, scores and their ledger, outbox.

One function per rule, the single event being a batch of one: this is what keeps it so.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from leadfunnel.models import LeadAssignment, OutboxMessage
from leads.models import Interaction, Lead, SalesRepProfile, StageTransition
from leads.services import interaction_record, interactions_record_bulk
from scoring.models import LeadRuleTotal, ScoreContribution
from scoring.services import scoring_settings_update
from tests.factories import LeadFactory, sales_rep

pytestmark = pytest.mark.django_db

SENIOR = {"first_name": "Ada", "last_name": "Lee", "title": "VP Sales"}


@pytest.fixture
def world(make_rule):
    """Rules without decay (so the instant of scoring cannot matter), three reps in a round-robin
    that is not id order (one away, one full), and leads in the stages scoring acts on."""
    scoring_settings_update(
        mql_threshold=40,
        required_profile_fields=["first_name", "last_name"],
        pql_rule={
            "enabled": True,
            "trial_type": "trial_started",
            "usage_type": "product_usage",
            "min_usage": 2,
            "within_days": 14,
        },
        recompute=False,
    )
    make_rule(name="Demo", interaction_type="demo_request", points=60)
    make_rule(
        name="Pricing",
        interaction_type="page_view",
        property="url",
        operator="contains",
        value="/pricing",
        points=30,
        max_points=30,
    )
    make_rule(name="Click", interaction_type="email_click", points=10, max_points=50)
    make_rule(name="Unsubscribed", interaction_type="unsubscribe", points=-80)
    make_rule(name="VP", dimension="fit", source="profile", field="title", operator="contains", value=["vp"], points=40)
    long_ago = timezone.now() - timedelta(days=3)
    reps = {
        "a": sales_rep("rep-a", last_assigned_at=long_ago + timedelta(hours=1)),
        "b": sales_rep("rep-b"),
        "c": sales_rep("rep-c", last_assigned_at=long_ago),
        "away": sales_rep("rep-away", is_away=True),
        "full": sales_rep("rep-full", capacity=1, last_assigned_at=long_ago - timedelta(days=1)),
    }
    LeadFactory(email="waiting@full.example", stage="mql", owner=reps["full"])
    leads = {
        "ada": LeadFactory(email="ada@acme.example", **SENIOR),
        "bo": LeadFactory(email="bo@beta.example", **SENIOR),
        "cy": LeadFactory(email="cy@corp.example", first_name="Cy", last_name="", title="VP"),  # profile missing
        "di": LeadFactory(email="di@delta.example", stage="recycled", cycle=1, score=10, **SENIOR),
        "ed": LeadFactory(email="ed@echo.example", **SENIOR),
        "fay": LeadFactory(email="fay@fox.example", stage="sal", owner=reps["a"], **SENIOR),
        "gus": LeadFactory(email="gus@golf.example", **SENIOR),
    }
    return reps, leads


def _events(leads) -> list[dict]:
    """Each lead's deciding event is its last one (a batch decides on all it holds of a lead, one
    event at a time on what came so far), so one at a time and a batch route alike."""
    now = timezone.now()
    at = [(now - timedelta(minutes=60 - n)).isoformat() for n in range(40)]
    lead = {name: lead.pk for name, lead in leads.items()}
    return [
        {"lead": lead["bo"], "type": "email_click", "occurred_at": at[0]},
        {
            "lead": lead["ada"],
            "type": "page_view",
            "occurred_at": at[1],
            "properties": {"url": "https://x.example/pricing"},
        },
        {"email": "new-one@newco.example", "type": "email_click", "occurred_at": at[2]},
        {"lead": lead["cy"], "type": "demo_request", "occurred_at": at[3]},  # scores, but no last name: no MQL
        {"lead": lead["ed"], "type": "trial_started", "occurred_at": at[4]},
        {
            "lead": lead["ada"],
            "type": "page_view",
            "occurred_at": at[5],
            "properties": {"url": "https://x.example/pricing"},
        },
        {"lead": lead["bo"], "type": "demo_request", "occurred_at": at[6]},  # → MQL
        {"lead": lead["gus"], "type": "email_click", "occurred_at": at[7]},
        {"lead": lead["ed"], "type": "product_usage", "occurred_at": at[8]},
        {"lead": lead["fay"], "type": "demo_request", "occurred_at": at[9]},  # already with sales: scored only
        {"email": "new-two@newco.example", "type": "page_view", "occurred_at": at[10]},
        {"lead": lead["di"], "type": "demo_request", "occurred_at": at[11]},  # recycled, back above: MQL cycle 2
        {"lead": lead["gus"], "type": "unsubscribe", "occurred_at": at[12]},
        {"lead": lead["ed"], "type": "product_usage", "occurred_at": at[13]},  # → PQL
        {"lead": lead["ada"], "type": "demo_request", "occurred_at": at[14]},  # → MQL
        {"email": "fay@fox.example", "type": "email_click", "occurred_at": at[15]},  # by email, with sales already
    ]


def _snapshot(emails: dict[int, str], start: dict) -> dict:
    """What users and integrations see, with ids turned into emails and instants into order."""

    def who(lead_id):
        return emails.get(lead_id) or Lead.objects.get(pk=lead_id).email

    leads = {
        lead.email: (
            lead.stage,
            lead.cycle,
            getattr(lead.owner, "username", None),
            lead.score,
            lead.fit_score,
            lead.engagement_score,
            lead.fit_points,
            lead.engagement_points,
            lead.mql_blocked,
            lead.sla_due_at - lead.assigned_at if lead.sla_due_at else None,
            lead.unsubscribed_at is not None,
            lead.last_activity_at,
        )
        for lead in Lead.objects.select_related("owner")
    }
    interactions = {
        i.pk: n for n, i in enumerate(Interaction.objects.filter(pk__gt=start["interaction"]).order_by("pk"))
    }
    transitions = [
        (
            who(t.lead_id),
            t.from_stage,
            t.to_stage,
            t.cause,
            t.cause_ref,
            t.reason,
            t.cycle,
            getattr(t.owner, "username", None),
            t.details,
        )
        for t in StageTransition.objects.filter(pk__gt=start["transition"]).select_related("owner").order_by("at", "pk")
    ]
    # Per lead in order (a batch makes its visitors for unknown emails before it scores anything).
    transitions.sort(key=lambda t: t[0])
    ledger = sorted(
        (who(c.lead_id), c.rule.name, c.points, c.reason, c.source, interactions.get(c.interaction_id))
        for c in ScoreContribution.objects.select_related("rule")
    )
    totals = sorted(
        (who(t.lead_id), t.rule.name, t.matches, t.points, t.raw_points)
        for t in LeadRuleTotal.objects.select_related("rule")
    )
    outbox = []
    for m in OutboxMessage.objects.filter(pk__gt=start["outbox"]).order_by("pk"):
        payload = dict(m.payload)
        if m.topic == "interactions.recorded":
            continue  # one per request: compared as a whole below
        for key in ("at", "sla_due_at", "transition_id", "assignment_id"):
            payload.pop(key, None)
        for key in ("lead_id",):
            payload[key] = who(payload[key])
        for key in ("owner_id", "previous_owner_id"):
            if payload.get(key):
                payload[key] = (
                    type(payload).__name__
                    and Lead._meta.get_field("owner").related_model.objects.get(pk=payload[key]).username
                )
        outbox.append((m.topic, payload))
    recorded = OutboxMessage.objects.filter(pk__gt=start["outbox"], topic="interactions.recorded")
    round_robin = [
        p.user.username
        for p in SalesRepProfile.objects.select_related("user").order_by("last_assigned_at", "user_id")
        if p.last_assigned_at is not None
    ]
    return {
        "leads": leads,
        "transitions": transitions,
        "ledger": ledger,
        "totals": totals,
        # The funnel's messages in order; lead.created for the unknown emails in any order.
        "outbox": [m for m in outbox if m[0] != "lead.created"],
        "created": sorted(p["lead_id"] for t, p in outbox if t == "lead.created"),
        "recorded": (
            sorted({who(i) for m in recorded for i in m.payload["lead_ids"]}),
            sorted({t for m in recorded for t in m.payload["types"]}),
        ),
        "round_robin": round_robin,
        "assignments": LeadAssignment.objects.count(),
    }


def _start() -> dict:
    def last(model):
        return model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    return {"interaction": last(Interaction), "transition": last(StageTransition), "outbox": last(OutboxMessage)}


def test_the_same_events_one_by_one_or_as_one_batch_leave_the_same_rows(world):
    reps, leads = world
    emails = {lead.pk: lead.email for lead in leads.values()}
    events = _events(leads)
    start = _start()

    with transaction.atomic():
        for event in events:
            interaction_record(
                **{"lead" if "lead" in event else "email": event.get("lead") or event["email"]},
                type=event["type"],
                occurred_at=event["occurred_at"],
                properties=event.get("properties"),
            )
        one_by_one = _snapshot(emails, start)
        transaction.set_rollback(True)

    result = interactions_record_bulk(events=events)
    batch = _snapshot(emails, start)

    assert result.accepted == len(events) and not result.errors
    assert batch == one_by_one
    # And the world was not trivial: two MQLs and a PQL routed in event order past the away and
    # the full rep, a recycled lead back in its second cycle, two visitors made for unknown emails,
    # the lead without its required profile scored but left a visitor.
    stages = {email: row[:3] for email, row in batch["leads"].items()}
    assert stages["bo@beta.example"] == ("mql", 1, "rep-b")
    assert stages["di@delta.example"] == ("mql", 2, "rep-c")
    assert stages["ed@echo.example"] == ("pql", 1, "rep-a")
    assert stages["ada@acme.example"] == ("mql", 1, "rep-b")
    assert stages["cy@corp.example"][0] == "visitor" and batch["leads"]["cy@corp.example"][3] >= 40
    assert stages["fay@fox.example"] == ("sal", 1, "rep-a")
    assert batch["created"] == ["new-one@newco.example", "new-two@newco.example"]
    assert [topic for topic, _ in batch["outbox"]].count("lead.assigned") == 4
    assert batch["round_robin"][-3:] == ["rep-c", "rep-a", "rep-b"]
    assert batch["leads"]["gus@golf.example"][10] is True  # the unsubscribe is on the lead

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.predictive.channel_quality import channel_quality, suggested_points
from tests.factories import FormFactory, LeadFactory, StageTransitionFactory


def history(lead, start, *steps):
    """Record transitions one hour apart from ``start``: steps are (from, to[, reason_code])."""
    for i, step in enumerate(steps):
        StageTransitionFactory(
            lead=lead,
            from_stage=step[0],
            to_stage=step[1],
            reason_code=step[2] if len(step) > 2 else "",
            at=start + timedelta(hours=i),
        )


@pytest.fixture
def known_history():
    now = timezone.now()
    in_period = now - timedelta(days=10)
    webinar = FormFactory(slug="webinar", channel_weight=15)
    inbound = {"channel": "inbound", "source": "website"}
    event = {"channel": "event", "source": "fair", "first_form": webinar}
    history(LeadFactory(**inbound), in_period, ("visitor", "mql"), ("mql", "sal"), ("sal", "sql"), ("sql", "customer"))
    history(LeadFactory(**inbound), in_period, ("visitor", "mql"), ("mql", "recycled", "no_budget_yet"))
    history(
        LeadFactory(**event), in_period, ("visitor", "mql"), ("mql", "sal"), ("sal", "sql"), ("sql", "lost", "price")
    )
    history(LeadFactory(**event), in_period, ("visitor", "mql"), ("mql", "disqualified", "competitor"))
    history(LeadFactory(**event), in_period, ("visitor", "pql"))
    # Became an MQL before the period: its acceptance inside the period does not count.
    history(LeadFactory(**inbound), now - timedelta(days=60), ("visitor", "mql"))
    return now


@pytest.mark.django_db
def test_channel_quality_figures_on_a_known_history(known_history):
    now = known_history

    report = channel_quality(since=now - timedelta(days=30), until=now, group_by="channel")

    groups = {g["key"]: g for g in report["groups"]}
    assert set(groups) == {"inbound", "event"}
    inbound, event = groups["inbound"], groups["event"]
    assert (inbound["mqls"], inbound["accepted"], inbound["rejected"], inbound["mql_to_sal_rate"]) == (2, 1, 1, 0.5)
    assert inbound["rejection_reasons"] == {"no_budget_yet": 1}
    assert (inbound["sqls"], inbound["won"], inbound["lost"], inbound["sql_to_won_rate"]) == (1, 1, 0, 1.0)
    assert (event["mqls"], event["accepted"], event["disqualified"], event["awaiting_decision"]) == (3, 1, 1, 1)
    assert event["mql_to_sal_rate"] == 0.5
    assert event["rejection_reasons"] == {"competitor": 1}
    assert (event["sqls"], event["won"], event["lost"], event["sql_to_won_rate"]) == (1, 0, 1, 0.0)
    assert event["loss_reasons"] == {"price": 1}
    assert report["total"]["mqls"] == 5 and report["total"]["won"] == 1
    # Customers per MQL: inbound 1/2, event 0/3, overall 1/5 → +2 and -2 after smoothing.
    assert report["suggestion_basis"] == "customer"
    assert inbound["suggested_points"] == 2
    assert event["suggested_points"] == -2
    assert event["confidence"] == "low"


@pytest.mark.django_db
def test_grouping_by_form_shows_the_forms_current_weight(known_history):
    now = known_history

    report = channel_quality(since=now - timedelta(days=30), until=now, group_by="form")

    groups = {g["key"]: g for g in report["groups"]}
    assert groups["webinar"]["current_points"] == 15 and groups["webinar"]["mqls"] == 3
    assert groups[None]["label"] == "(none)" and groups[None]["mqls"] == 2


def test_suggested_points_grow_with_the_outcome_rate_and_stay_bounded():
    assert suggested_points(0, 0, 0.1) is None
    assert suggested_points(5, 100, 0.0) is None
    assert suggested_points(10, 100, 0.1) == 0
    assert suggested_points(40, 100, 0.1) > suggested_points(20, 100, 0.1) > 0
    assert suggested_points(1000, 1000, 0.01) == 25
    assert suggested_points(0, 10000, 0.5) == -25

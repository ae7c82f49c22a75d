"""Funnel analytics against a small history whose every figure is worked out by hand.

History (2026, period = March):
  L1 web    created 03-02; mql 03-03 00:00 → sal 03-03 12:00 → sql 03-05 12:00 → customer 03-10 12:00
  L2 web    created 03-02; mql 03-04 → recycled 03-05 (no_budget_yet) → mql 03-20 (cycle 2) → sal 03-21
  L3 event  created 02-20; mql 03-06 → sal 03-08 → sql 03-09 → lost 03-15 (price)
  L4 event  created 03-10; mql 03-12 00:00 → recycled 03-12 06:00 (wrong_person) → mql 04-05 (cycle 2)
  L5 web    created 03-01; pql 03-15 → sal 03-16
  L6 web    created 02-01; mql 02-10 → sal 02-11          (all before the period)
  L7 web    created 03-25; nothing else
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadfunnel.models import LeadAssignment
from leads import analytics
from leads.models import StageTransition
from tests.factories import FormFactory, LeadFactory, StageTransitionFactory, UserFactory

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def move(lead, frm, to, when, cycle=1, owner=None, reason_code=""):
    return StageTransitionFactory(
        lead=lead, from_stage=frm, to_stage=to, at=when, cycle=cycle, owner=owner, reason_code=reason_code
    )


@pytest.fixture
def history(sales_rep, other_rep):
    sam, sasha = sales_rep, other_rep
    leads = {}
    leads["L1"] = l1 = LeadFactory(source="web", channel="inbound", utm_campaign="spring", created_at=at(3, 2))
    move(l1, "visitor", "mql", at(3, 3), owner=sam)
    move(l1, "mql", "sal", at(3, 3, 12), owner=sam)
    move(l1, "sal", "sql", at(3, 5, 12), owner=sam)
    move(l1, "sql", "customer", at(3, 10, 12), owner=sam)
    leads["L2"] = l2 = LeadFactory(source="web", channel="inbound", created_at=at(3, 2))
    move(l2, "visitor", "mql", at(3, 4), owner=sam)
    move(l2, "mql", "recycled", at(3, 5), reason_code="no_budget_yet")
    move(l2, "recycled", "mql", at(3, 20), cycle=2, owner=sasha)
    move(l2, "mql", "sal", at(3, 21), cycle=2, owner=sasha)
    leads["L3"] = l3 = LeadFactory(source="event", channel="event", created_at=at(2, 20))
    move(l3, "visitor", "mql", at(3, 6), owner=sasha)
    move(l3, "mql", "sal", at(3, 8), owner=sasha)
    move(l3, "sal", "sql", at(3, 9), owner=sasha)
    move(l3, "sql", "lost", at(3, 15), reason_code="price")
    leads["L4"] = l4 = LeadFactory(source="event", channel="event", created_at=at(3, 10))
    move(l4, "visitor", "mql", at(3, 12), owner=sasha)
    move(l4, "mql", "recycled", at(3, 12, 6), reason_code="wrong_person")
    move(l4, "recycled", "mql", at(4, 5), cycle=2, owner=sam)
    leads["L5"] = l5 = LeadFactory(source="web", channel="product", created_at=at(3, 1))
    move(l5, "visitor", "pql", at(3, 15), owner=sam)
    move(l5, "pql", "sal", at(3, 16), owner=sam)
    leads["L6"] = l6 = LeadFactory(source="web", channel="inbound", created_at=at(2, 1))
    move(l6, "visitor", "mql", at(2, 10), owner=sam)
    move(l6, "mql", "sal", at(2, 11), owner=sam)
    leads["L7"] = LeadFactory(source="web", channel="inbound", created_at=at(3, 25))
    return leads


def conversions(group):
    return {(c["from"], c["to"]): (c["from_count"], c["to_count"], c["rate"]) for c in group["conversions"]}


@pytest.mark.django_db
def test_period_view_counts_entries_from_history_not_current_stage(history):
    result = analytics.funnel_summary(since=SINCE, until=UNTIL)
    totals = result["totals"]
    assert totals["entries"] == {
        "visitor": 5,
        "mql": 5,
        "pql": 1,
        "sal": 4,
        "sql": 2,
        "customer": 1,
        "recycled": 2,
        "lost": 1,
        "disqualified": 0,
    }
    assert conversions(totals) == {
        ("visitor", "mql"): (5, 4, 0.8),
        ("mql", "sal"): (5, 3, 0.6),
        ("pql", "sal"): (1, 1, 1.0),
        ("sal", "sql"): (4, 2, 0.5),
        ("sql", "customer"): (2, 1, 0.5),
    }
    assert totals["mql_sal_ratio"] == 0.6
    assert totals["rejections"] == {"total": 2, "reasons": {"no_budget_yet": 1, "wrong_person": 1}}
    assert totals["recycles"] == {"recycled": 2, "returned": 1}
    assert result["groups"] == []


@pytest.mark.django_db
def test_period_view_grouped_by_source(history):
    result = analytics.funnel_summary(since=SINCE, until=UNTIL, group_by="source")
    groups = {g["key"]: g for g in result["groups"]}
    assert list(groups) == ["event", "web"]
    web, event = groups["web"], groups["event"]
    assert web["entries"] == {
        "visitor": 4,
        "mql": 3,
        "pql": 1,
        "sal": 3,
        "sql": 1,
        "customer": 1,
        "recycled": 1,
        "lost": 0,
        "disqualified": 0,
    }
    assert event["entries"] == {
        "visitor": 1,
        "mql": 2,
        "pql": 0,
        "sal": 1,
        "sql": 1,
        "customer": 0,
        "recycled": 1,
        "lost": 1,
        "disqualified": 0,
    }
    assert conversions(web)[("mql", "sal")] == (3, 2, round(2 / 3, 4))
    assert conversions(event)[("visitor", "mql")] == (1, 2, 2.0)
    assert conversions(event)[("sql", "customer")] == (1, 0, 0.0)
    assert conversions(event)[("pql", "sal")] == (0, 0, None)
    assert web["rejections"] == {"total": 1, "reasons": {"no_budget_yet": 1}}
    assert event["rejections"] == {"total": 1, "reasons": {"wrong_person": 1}}
    assert web["recycles"] == {"recycled": 1, "returned": 1}
    assert event["recycles"] == {"recycled": 1, "returned": 0}
    # The totals of a grouped answer equal the ungrouped answer.
    assert result["totals"] == analytics.funnel_summary(since=SINCE, until=UNTIL)["totals"]


@pytest.mark.django_db
def test_period_view_grouped_by_cycle_and_owner(history, sales_rep, other_rep):
    by_cycle = {g["key"]: g for g in analytics.funnel_summary(since=SINCE, until=UNTIL, group_by="cycle")["groups"]}
    assert by_cycle[1]["entries"]["visitor"] == 5
    assert by_cycle[1]["entries"]["mql"] == 4
    assert by_cycle[2]["entries"] == {
        "visitor": 0,
        "mql": 1,
        "pql": 0,
        "sal": 1,
        "sql": 0,
        "customer": 0,
        "recycled": 0,
        "lost": 0,
        "disqualified": 0,
    }
    assert by_cycle[2]["recycles"]["returned"] == 1
    by_owner = {g["label"]: g for g in analytics.funnel_summary(since=SINCE, until=UNTIL, group_by="owner")["groups"]}
    assert by_owner["sam"]["entries"]["mql"] == 2  # L1, L2 (cycle 1)
    assert by_owner["sam"]["entries"]["pql"] == 1
    assert by_owner["sasha"]["entries"]["mql"] == 3  # L2 (cycle 2), L3, L4
    assert by_owner["sasha"]["key"] == other_rep.pk
    assert by_owner["(no owner)"]["entries"]["recycled"] == 2


@pytest.mark.django_db
def test_cohort_view_follows_mqls_of_the_period_to_today(history):
    totals = analytics.funnel_cohort(since=SINCE, until=UNTIL)["totals"]
    assert totals["cohort"] == 6  # L1, L2 (two cycles), L3, L4 (cycle 1), L5 (PQL)
    assert totals["reached"] == {"sal": 4, "sql": 2, "customer": 1, "rejected": 2}
    assert totals["rates"] == {
        "sal": round(4 / 6, 4),
        "sql": round(2 / 6, 4),
        "customer": round(1 / 6, 4),
        "rejected": round(2 / 6, 4),
    }
    # days: sal [0.5, 1, 1, 2]; sql [2.5, 3]; customer [7.5]; rejected [0.25, 1]
    assert totals["median_days"] == {"sal": 1.0, "sql": 2.75, "customer": 7.5, "rejected": 0.625}
    assert totals["p90_days"] == {"sal": 1.7, "sql": 2.95, "customer": 7.5, "rejected": 0.925}


@pytest.mark.django_db
def test_cohort_view_grouped_by_source(history):
    result = analytics.funnel_cohort(since=SINCE, until=UNTIL, group_by="source")
    groups = {g["key"]: g for g in result["groups"]}
    assert groups["web"]["cohort"] == 4  # L1, L2 ×2, L5
    assert groups["web"]["reached"] == {"sal": 3, "sql": 1, "customer": 1, "rejected": 1}
    assert groups["web"]["median_days"]["sal"] == 1.0  # [0.5, 1, 1]
    assert groups["event"]["cohort"] == 2
    assert groups["event"]["reached"] == {"sal": 1, "sql": 1, "customer": 0, "rejected": 1}
    assert groups["event"]["median_days"] == {"sal": 2.0, "sql": 3.0, "customer": None, "rejected": 0.25}
    assert result["totals"]["cohort"] == 6
    assert result["totals"]["reached"]["sal"] == 4


@pytest.mark.django_db
def test_time_in_stage_medians_and_p90_exclude_open_stays(history):
    stages = analytics.stage_durations(since=SINCE, until=UNTIL)["groups"][0]["stages"]
    assert stages["mql"] == {"entered": 5, "left": 5, "open": 0, "median_hours": 24.0, "p90_hours": 38.4}
    assert stages["pql"] == {"entered": 1, "left": 1, "open": 0, "median_hours": 24.0, "p90_hours": 24.0}
    assert stages["sal"] == {"entered": 4, "left": 2, "open": 2, "median_hours": 36.0, "p90_hours": 45.6}
    assert stages["sql"] == {"entered": 2, "left": 2, "open": 0, "median_hours": 132.0, "p90_hours": 141.6}
    assert stages["customer"] == {"entered": 1, "left": 0, "open": 1, "median_hours": None, "p90_hours": None}
    # L4 left "recycled" after the period (04-05): the stay still counts, 570 h.
    assert stages["recycled"] == {"entered": 2, "left": 2, "open": 0, "median_hours": 465.0, "p90_hours": 549.0}
    assert stages["lost"]["open"] == 1


@pytest.mark.django_db
def test_channel_quality_shows_sqls_won_and_lost_per_source(history):
    quality = analytics.channel_quality(since=SINCE, until=UNTIL, group_by="source")
    assert quality == [
        {"key": "event", "label": "event", "sqls": 1, "won": 0, "lost": 1, "open": 0, "win_rate": 0.0},
        {"key": "web", "label": "web", "sqls": 1, "won": 1, "lost": 0, "open": 0, "win_rate": 1.0},
    ]
    by_channel = {r["key"]: r for r in analytics.channel_quality(since=SINCE, until=UNTIL, group_by="channel")}
    assert by_channel["inbound"]["won"] == 1 and by_channel["event"]["lost"] == 1


@pytest.mark.django_db
def test_sla_report_measures_response_time_and_breaches_per_rep(sales_rep, other_rep):
    sam, sasha = sales_rep, other_rep
    LeadFactory(owner=sam, assigned_at=at(3, 2), first_response_at=at(3, 2, 10), stage="sal")
    LeadFactory(owner=sam, assigned_at=at(3, 3), first_response_at=at(3, 5), sla_breached_at=at(3, 4), stage="sal")
    waiting = LeadFactory(owner=sasha, assigned_at=at(3, 4), sla_breached_at=at(3, 5), stage="mql")
    LeadFactory(owner=sam, assigned_at=at(2, 4), first_response_at=at(2, 5), stage="sal")  # before the period
    LeadAssignment.objects.create(lead=waiting, from_owner=sasha, to_owner=sam, at=at(3, 9), cause="sla")
    report = analytics.sla_report(since=SINCE, until=UNTIL, sla_hours=24)
    reps = {r["label"]: r for r in report["reps"]}
    assert reps["sam"] == {
        "owner_id": sam.pk,
        "label": "sam",
        "assigned": 2,
        "responded": 2,
        "waiting": 0,
        "within_sla": 1,
        "breached": 1,
        "reassigned_away": 0,
        "median_response_hours": 29.0,
        "p90_response_hours": 44.2,
    }
    assert reps["sasha"]["assigned"] == 1
    assert reps["sasha"]["waiting"] == 1
    assert reps["sasha"]["breached"] == 1
    assert reps["sasha"]["reassigned_away"] == 1
    assert reps["sasha"]["median_response_hours"] is None
    assert report["totals"]["assigned"] == 3 and report["totals"]["breached"] == 2


def test_percentile_cont_matches_postgresql_interpolation():
    assert analytics.percentile_cont([], 0.5) is None
    assert analytics.percentile_cont([3], 0.9) == 3
    assert analytics.percentile_cont([6, 12, 24, 24, 48], 0.9) == pytest.approx(38.4)
    assert analytics.percentile_cont([1, 2, 3, 4], 0.5) == 2.5


# --- the API ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_funnel_api_answers_period_view_with_all_sections(history, marketer_client):
    response = marketer_client.get(
        "/api/v1/funnel/", {"since": "2026-03-01", "until": "2026-03-31", "group_by": "source"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["view"] == "period"
    assert body["totals"]["entries"]["mql"] == 5
    assert {g["key"] for g in body["groups"]} == {"web", "event"}
    assert body["channel_quality"]["group_by"] == "source"
    durations = {g["key"]: g["stages"] for g in body["stage_durations"]}
    assert durations["web"]["mql"]["median_hours"] == 24.0  # L1 12 h, L2 24 h, L2 24 h
    assert "reps" in body["sla"]


@pytest.mark.django_db
def test_funnel_api_answers_cohort_view(history, marketer_client):
    response = marketer_client.get("/api/v1/funnel/", {"since": "2026-03-01", "until": "2026-03-31", "view": "cohort"})
    assert response.status_code == 200
    assert response.json()["totals"]["reached"]["customer"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2026-02-30"},
        {"since": "2026-03-10", "until": "2026-03-01"},
        {"group_by": "stage"},
        {"view": "sideways"},
    ],
)
def test_funnel_api_refuses_bad_parameters_with_400(marketer_client, params):
    response = marketer_client.get("/api/v1/funnel/", params)
    assert response.status_code == 400
    assert response.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "field"), [({"since": "2026-02-30"}, "since"), ({"until": "9999-12-31"}, "until")])
def test_funnel_api_names_the_date_it_could_not_read(marketer_client, params, field):
    response = marketer_client.get("/api/v1/funnel/", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.django_db
def test_funnel_api_is_for_marketers_and_admins(sales_client, anon_client, admin_client_api):
    assert sales_client.get("/api/v1/funnel/").status_code == 403
    assert anon_client.get("/api/v1/funnel/").status_code in (401, 403)
    assert admin_client_api.get("/api/v1/funnel/").status_code == 200


@pytest.mark.django_db
def test_funnel_api_query_count_does_not_grow_with_history(history, marketer_client, settings):
    settings.FUNNEL_CACHE_SECONDS = 0
    params = {"since": "2026-03-01", "until": "2026-03-31", "group_by": "owner"}
    marketer_client.get("/api/v1/funnel/", params)  # warm the token/role lookups
    with CaptureQueriesContext(connection) as small:
        assert marketer_client.get("/api/v1/funnel/", params).status_code == 200
    extra_owner = UserFactory(username="extra-rep")
    for i in range(15):
        lead = LeadFactory(source=f"s{i}", created_at=at(3, 3))
        move(lead, "visitor", "mql", at(3, 4) + timedelta(minutes=i), owner=extra_owner)
        move(lead, "mql", "sal", at(3, 5) + timedelta(minutes=i), owner=extra_owner)
    with CaptureQueriesContext(connection) as large:
        assert marketer_client.get("/api/v1/funnel/", params).status_code == 200
    assert len(large) == len(small)
    # token, roles, the report's memory settings, 2 period queries, owner names ×3 (summary,
    # durations, sla), durations, channel quality, sla: counts, response times, reassignments;
    # the report's transaction is a savepoint inside the test's (+2)
    assert len(small) <= 16


@pytest.mark.django_db
def test_funnel_api_answers_are_cached_per_query_string(history, marketer_client, settings):
    settings.FUNNEL_CACHE_SECONDS = 60
    params = {"since": "2026-03-01", "until": "2026-03-31"}
    first = marketer_client.get("/api/v1/funnel/", params).json()
    with CaptureQueriesContext(connection) as cached:
        second = marketer_client.get("/api/v1/funnel/", params).json()
    assert second == first
    assert not any("leads_stagetransition" in q["sql"] for q in cached.captured_queries)
    other = marketer_client.get("/api/v1/funnel/", {**params, "group_by": "source"}).json()
    assert other["group_by"] == "source"


@pytest.mark.django_db
def test_period_view_grouped_by_form_counts_transitions_and_new_leads_under_the_slug():
    demo, pricing = FormFactory(slug="demo-request"), FormFactory(slug="pricing")
    a = LeadFactory(first_form=demo, created_at=at(3, 2))
    b = LeadFactory(first_form=demo, created_at=at(3, 3))
    c = LeadFactory(first_form=pricing, created_at=at(2, 3))
    LeadFactory(created_at=at(3, 4))  # no form
    move(a, "visitor", "mql", at(3, 5))
    move(b, "visitor", "mql", at(3, 6))
    move(b, "mql", "recycled", at(3, 7), reason_code="no_budget_yet")
    move(c, "visitor", "mql", at(3, 8))
    result = analytics.funnel_summary(since=SINCE, until=UNTIL, group_by="form")
    groups = {g["key"]: g for g in result["groups"]}
    assert set(groups) == {"demo-request", "pricing", None}
    assert groups["demo-request"]["label"] == "demo-request"
    assert groups["demo-request"]["entries"]["visitor"] == 2
    assert groups["demo-request"]["entries"]["mql"] == 2
    assert groups["demo-request"]["rejections"] == {"total": 1, "reasons": {"no_budget_yet": 1}}
    assert groups["pricing"]["entries"]["visitor"] == 0
    assert groups["pricing"]["entries"]["mql"] == 1
    assert groups[None]["entries"]["visitor"] == 1
    durations = {g["key"]: g for g in analytics.stage_durations(since=SINCE, until=UNTIL, group_by="form")["groups"]}
    assert durations["demo-request"]["stages"]["mql"]["entered"] == 2
    assert durations["demo-request"]["stages"]["mql"]["left"] == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_transitions_carry_the_leads_current_attribution_on_postgresql(history):
    l3 = history["L3"]
    l3.source, l3.utm_campaign = "partner", "autumn"
    l3.save(update_fields=["source", "utm_campaign"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT lead_source, lead_channel, lead_utm_campaign FROM leads_stagetransition WHERE lead_id = %s",
            [l3.pk],
        )
        assert cursor.fetchall() == [("partner", "event", "autumn")]
    by_source = {g["key"]: g for g in analytics.funnel_summary(since=SINCE, until=UNTIL, group_by="source")["groups"]}
    assert by_source["partner"]["entries"]["sql"] == 1
    assert by_source["event"]["entries"]["sql"] == 0
    cohort = {g["key"]: g for g in analytics.funnel_cohort(since=SINCE, until=UNTIL, group_by="source")["groups"]}
    assert cohort["partner"]["cohort"] == 1
    quality = {r["key"]: r for r in analytics.channel_quality(since=SINCE, until=UNTIL, group_by="source")}
    assert quality["partner"]["lost"] == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_each_transition_knows_when_the_lead_left_its_stage_even_when_history_arrives_out_of_order():
    lead, other = LeadFactory(), LeadFactory()
    third = move(lead, "sal", "sql", at(3, 9))
    first = move(lead, "visitor", "mql", at(3, 3))  # recorded later, happened earlier
    move(other, "visitor", "mql", at(3, 4))
    StageTransition.objects.bulk_create(
        [
            StageTransition(lead=lead, from_stage="mql", to_stage="sal", at=at(3, 5)),
            StageTransition(lead=lead, from_stage="sql", to_stage="customer", at=at(3, 12)),
            StageTransition(lead=other, from_stage="mql", to_stage="sal", at=at(3, 4)),  # same instant
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT id, left_at, LEAD(at) OVER (PARTITION BY lead_id ORDER BY at, id)
               FROM leads_stagetransition ORDER BY lead_id, at, id"""
        )
        rows = cursor.fetchall()
    assert len(rows) == 6
    assert [(row[1] == row[2]) for row in rows] == [True] * 6
    left = {row[0]: row[1] for row in rows}
    assert left[first.pk] == at(3, 5)
    assert left[third.pk] == at(3, 12)
    stages = analytics.stage_durations(since=SINCE, until=UNTIL)["groups"][0]["stages"]
    assert stages["mql"] == {"entered": 2, "left": 2, "open": 0, "median_hours": 24.0, "p90_hours": 43.2}
    assert stages["customer"]["open"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_period_report_splits_its_sections_over_two_connections(history):
    with CaptureQueriesContext(connection) as on_this_connection:
        report = analytics.funnel_report(since=SINCE, until=UNTIL, group_by="source")
    sqls = " ".join(q["sql"] for q in on_this_connection.captured_queries)
    assert "left_at" not in sqls and "first_response_at" not in sqls  # computed on the second connection
    assert list(report) == [*analytics._PERIOD_KEYS, "view", "computed_at"]
    assert report["stage_durations"] == analytics.stage_durations(since=SINCE, until=UNTIL, group_by="source")["groups"]
    sla = analytics.sla_report(since=SINCE, until=UNTIL)
    assert report["sla"] == {k: v for k, v in sla.items() if k not in ("since", "until")}
    summary = analytics.funnel_summary(since=SINCE, until=UNTIL, group_by="source")
    assert report["totals"] == summary["totals"] and report["groups"] == summary["groups"]
    by_source = {g["key"]: g for g in report["stage_durations"]}
    assert by_source["web"]["stages"]["mql"]["entered"] == 3

"""The cohort and reps' SLA report pages show what /api/v1/funnel/ computes, with its filters."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Lead


@pytest.mark.django_db
def test_the_cohort_page_shows_the_apis_cohort_numbers_per_group(marketer_web, marketer_client, funnel_world):
    today = timezone.localdate()
    query = f"since={today - timedelta(days=30)}&until={today}&group_by=source"
    page = marketer_web.get(f"/reports/cohorts/?{query}")
    assert page.status_code == 200
    body = page.content.decode()
    api = marketer_client.get(f"/api/v1/funnel/?view=cohort&{query}").json()

    shown = {}
    for key, row in re.findall(r'<tr class="cohort-row" data-key="([^"]*)" data-total="\d">(.*?)</tr>', body, re.S):
        shown[key] = {
            "cohort": int(re.search(r'data-step="cohort">(\d+)', row).group(1)),
            **{step: int(n) for step, n in re.findall(r'data-step="(\w+)" data-reached="(\d+)"', row)},
        }
    expected = {"": {"cohort": api["totals"]["cohort"], **api["totals"]["reached"]}}
    expected.update({g["key"]: {"cohort": g["cohort"], **g["reached"]} for g in api["groups"]})
    assert shown == expected
    # The world: 6 MQLs and a PQL, 4 reached SAL, 2 SQL, 1 customer, 1 rejected.
    assert expected[""] == {"cohort": 7, "sal": 4, "sql": 2, "customer": 1, "rejected": 1}
    assert shown["webinar"]["cohort"] == 4


@pytest.mark.django_db
def test_the_cohort_page_follows_the_period_and_refuses_an_unknown_grouping(marketer_web, funnel_world):
    long_ago = marketer_web.get("/reports/cohorts/?since=2001-01-01&until=2001-12-31").content.decode()
    assert 'data-step="cohort">0<' in long_ago
    bad = marketer_web.get("/reports/cohorts/?group_by=shoe_size")
    assert bad.status_code == 400 and "group_by must be one of" in bad.content.decode()


@pytest.mark.django_db
def test_the_reps_page_shows_the_apis_sla_report(marketer_web, marketer_client, sales_rep, other_rep):
    now = timezone.now()
    for hours_to_answer in (1, 30):
        Lead.objects.create(
            email=f"a{hours_to_answer}@x.example",
            owner=sales_rep,
            stage="sal",
            assigned_at=now - timedelta(days=2),
            first_response_at=now - timedelta(days=2) + timedelta(hours=hours_to_answer),
        )
    Lead.objects.create(email="w@x.example", owner=other_rep, stage="mql", assigned_at=now - timedelta(hours=3))
    today = timezone.localdate()
    query = f"since={today - timedelta(days=7)}&until={today}"
    body = marketer_web.get(f"/reports/reps/?{query}").content.decode()
    api = marketer_client.get(f"/api/v1/funnel/?{query}").json()["sla"]
    for rep in api["reps"]:
        row = re.search(rf'<tr class="rep-row" data-owner="{rep["owner_id"]}">(.*?)</tr>', body, re.S).group(1)
        shown = dict(re.findall(r'data-col="(\w+)">(\d+)<', row))
        for col in ("assigned", "responded", "waiting", "within_sla", "breached", "reassigned_away"):
            assert int(shown[col]) == rep[col], (rep["label"], col)
    sam = next(r for r in api["reps"] if r["owner_id"] == sales_rep.pk)
    assert (sam["assigned"], sam["within_sla"], sam["breached"]) == (2, 1, 1)


@pytest.mark.django_db
def test_the_reports_are_for_marketers_and_linked_from_the_funnel_page(marketer_web, rep_web):
    assert rep_web.get("/reports/cohorts/").status_code == 403
    assert rep_web.get("/reports/reps/").status_code == 403
    funnel = marketer_web.get("/?period=30d&group_by=campaign").content.decode()
    links = funnel[funnel.index('id="report-links"') :][:600]
    assert "/reports/cohorts/?since=" in links and "group_by=utm_campaign" in links and "/reports/reps/?since=" in links

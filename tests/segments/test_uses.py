"""Segments where a set of leads is chosen: the funnel report (API and page), the leads list and
its CSV export, and the bulk bar acting on every lead of a segment."""

import csv
import io

import pytest

from leads import services
from leads.models import Segment, SegmentMember, StageTransition
from tests.factories import InteractionFactory, LeadFactory
from tests.ops.test_analytics import history  # noqa: F401 - the hand-computed funnel history

pytestmark = pytest.mark.django_db

MARCH = {"since": "2026-03-01", "until": "2026-03-31"}


def _segment(name, *conditions, match="all") -> Segment:
    return services.segment_create(data={"name": name, "definition": {"match": match, "conditions": list(conditions)}})


def test_the_funnel_report_of_a_segment_equals_its_group_in_the_whole_report(history, marketer_client):  # noqa: F811
    web = _segment("Web", {"field": "source", "operator": "equals", "value": "web"})
    whole = marketer_client.get("/api/v1/funnel/", {**MARCH, "group_by": "source"}).json()
    web_group = next(g for g in whole["groups"] if g["key"] == "web")

    response = marketer_client.get("/api/v1/funnel/", {**MARCH, "segment": web.pk})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["segment"] == web.pk
    assert body["totals"]["entries"] == web_group["entries"]
    assert body["totals"]["entries"]["mql"] == 3  # L1, L2 twice; not L3/L4 (event)
    assert body["totals"]["entries"] != whole["totals"]["entries"]
    durations = body["stage_durations"][0]["stages"]
    assert durations == next(g for g in whole["stage_durations"] if g["key"] == "web")["stages"]
    quality = {g["key"]: g for g in body["channel_quality"]["groups"]}
    assert sum(g["sqls"] for g in quality.values()) == 1  # L1's SQL only (L3 is an event lead)
    assert body["sla"]["totals"]["assigned"] <= whole["sla"]["totals"]["assigned"]

    cohort = marketer_client.get("/api/v1/funnel/", {**MARCH, "view": "cohort", "segment": web.pk}).json()
    whole_cohort = marketer_client.get("/api/v1/funnel/", {**MARCH, "view": "cohort", "group_by": "source"}).json()
    web_cohort = next(g for g in whole_cohort["groups"] if g["key"] == "web")
    assert cohort["totals"]["cohort"] == web_cohort["cohort"]
    assert cohort["totals"]["reached"] == web_cohort["reached"]


def test_a_behaviour_segment_filters_the_funnel_too(history, marketer_client):  # noqa: F811
    l3 = StageTransition.objects.filter(reason_code="price").get().lead
    InteractionFactory(lead=l3, type="webinar_attended", properties={})
    attendees = _segment("Attendees", {"behaviour": "webinar_attended"})
    body = marketer_client.get("/api/v1/funnel/", {**MARCH, "segment": attendees.pk}).json()
    assert body["totals"]["entries"]["mql"] == 1
    assert body["totals"]["entries"]["sql"] == 1
    assert body["totals"]["entries"]["lost"] == 1
    assert body["totals"]["entries"]["customer"] == 0


def test_the_funnel_refuses_an_unknown_segment(marketer_client):
    assert marketer_client.get("/api/v1/funnel/", {"segment": "999999"}).status_code == 404
    assert marketer_client.get("/api/v1/funnel/", {"segment": "web"}).status_code == 400


def test_the_funnel_page_filtered_by_a_segment(history, marketer_web):  # noqa: F811
    web = _segment("Web leads", {"field": "source", "operator": "equals", "value": "web"})
    page = marketer_web.get("/", {**MARCH, "segment": web.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Segment <a" in html and "Web leads</a>" in html
    mql = next(s for s in page.context["steps"] if s["stage"] == "mql")
    assert mql["count"] == 3
    assert f"segment={web.pk}" in mql["link"]
    whole = marketer_web.get("/", MARCH)
    assert next(s for s in whole.context["steps"] if s["stage"] == "mql")["count"] == 5
    # The drill-down link opens the segment's leads that entered MQL.
    drill = marketer_web.get(mql["link"])
    assert {lead.source for lead in drill.context["page"].leads} == {"web"}


def _rows(response) -> list[dict]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_export_and_the_leads_api_take_a_segment(marketer_client, marketer_web):
    LeadFactory(email="vip1@x.example", tags=["vip"], stage="mql")
    LeadFactory(email="vip2@x.example", tags=["vip"], stage="visitor")
    LeadFactory(email="plain@x.example", tags=[], stage="mql")
    vips = _segment("VIPs", {"field": "tags", "operator": "contains", "value": "vip"})

    rows = _rows(marketer_client.get("/api/v1/leads/export.csv", {"segment": vips.pk}))
    assert sorted(r["email"] for r in rows) == ["vip1@x.example", "vip2@x.example"]
    rows = _rows(marketer_client.get("/api/v1/leads/export.csv", {"segment": vips.pk, "stage": "mql"}))
    assert [r["email"] for r in rows] == ["vip1@x.example"]
    assert marketer_client.get("/api/v1/leads/export.csv", {"segment": "999999"}).status_code == 404

    listed = marketer_client.get("/api/v1/leads/", {"segment": vips.pk}).json()
    assert sorted(r["email"] for r in listed["results"]) == ["vip1@x.example", "vip2@x.example"]

    page = marketer_web.get("/leads/", {"segment": vips.pk})
    assert page.context["export_url"] == f"/leads/export.csv?segment={vips.pk}"
    exported = b"".join(marketer_web.get(page.context["export_url"]).streaming_content).decode()
    assert "vip1@x.example" in exported and "vip2@x.example" in exported and "plain@x.example" not in exported
    assert page.context["page"].total == 2


def test_a_bulk_action_acts_on_every_lead_of_the_segment(marketer_web, marketer):
    members = [LeadFactory(tags=["vip"], score=10) for _ in range(3)]
    outsider = LeadFactory(tags=[], score=10)
    vips = _segment("VIPs", {"field": "tags", "operator": "contains", "value": "vip"})

    response = marketer_web.post(
        "/leads/bulk/",
        {"action": "mark_mql", "scope": "segment", "segment": vips.pk, "reason": "Campaign follow-up"},
        follow=True,
    )

    assert response.status_code == 200
    assert "Mark as MQL: done for 3 lead(s)." in [str(m) for m in response.context["messages"]]
    moved = set(StageTransition.objects.filter(to_stage="mql").values_list("lead_id", flat=True))
    assert moved == {lead.pk for lead in members}
    outsider.refresh_from_db()
    assert outsider.stage == "visitor"


def test_bulk_list_actions_add_the_selection_or_the_segment_to_a_static_list(marketer_web):
    a, b, c = LeadFactory(tags=["vip"]), LeadFactory(tags=["vip"]), LeadFactory()
    vips = _segment("VIPs", {"field": "tags", "operator": "contains", "value": "vip"})
    booth = services.segment_create(data={"name": "Booth", "kind": "static"})

    marketer_web.post("/leads/bulk/", {"action": "add_to_list", "list": booth.pk, "ids": [c.pk]})
    assert set(SegmentMember.objects.values_list("lead_id", flat=True)) == {c.pk}
    marketer_web.post(
        "/leads/bulk/", {"action": "add_to_list", "list": booth.pk, "scope": "segment", "segment": vips.pk}
    )
    assert set(SegmentMember.objects.values_list("lead_id", flat=True)) == {a.pk, b.pk, c.pk}
    marketer_web.post("/leads/bulk/", {"action": "remove_from_list", "list": booth.pk, "ids": [a.pk, c.pk]})
    assert set(SegmentMember.objects.values_list("lead_id", flat=True)) == {b.pk}
    refused = marketer_web.post("/leads/bulk/", {"action": "add_to_list", "ids": [a.pk]}, follow=True)
    assert "Pick the list." in [str(m) for m in refused.context["messages"]]
    assert set(SegmentMember.objects.values_list("lead_id", flat=True)) == {b.pk}


def test_sales_reps_cannot_use_the_bulk_bar_on_a_segment(rep_web):
    lead = LeadFactory(tags=["vip"])
    vips = _segment("VIPs", {"field": "tags", "operator": "contains", "value": "vip"})
    response = rep_web.post(
        "/leads/bulk/", {"action": "disqualify", "scope": "segment", "segment": vips.pk, "reason": "x"}
    )
    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.stage == "visitor"

"""The segments API: create, read, change, delete; validation messages naming the bad
condition; roles; members paginated like the leads list in a fixed number of queries; static
lists by id, email and CSV."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leadfunnel.models import AuditEvent
from leads.models import Segment, SegmentMember
from tests.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db

VP_PRICING = {
    "match": "all",
    "conditions": [
        {"field": "title", "operator": "contains", "value": "VP"},
        {"field": "score", "operator": "gte", "value": 50},
        {"field": "tags", "operator": "contains", "value": "vip"},
        {
            "behaviour": "page_view",
            "property": "url",
            "operator": "contains",
            "value": "/pricing",
            "at_least": 2,
            "within_days": 30,
        },
        {"behaviour": "email_open", "never": True},
    ],
}


def _vip(**extra):
    lead = LeadFactory(title="VP Sales", score=70, tags=["vip"], **extra)
    for _ in range(2):
        InteractionFactory(lead=lead, type="page_view", properties={"url": "https://x.example/pricing"})
    return lead


def test_a_marketer_creates_a_segment_and_reads_its_live_count(marketer_client):
    match = _vip()
    LeadFactory(title="VP Sales", score=70, tags=["vip"])  # no pricing visits

    response = marketer_client.post("/api/v1/segments/", {"name": "Hot VPs", "definition": VP_PRICING}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lead_count"] == 1
    assert body["kind"] == "smart"
    assert body["definition"]["conditions"][4] == {"behaviour": "email_open", "never": True}
    assert "did page view with url contains /pricing at least 2 times in the last 30 days" in body["conditions_text"]
    segment = Segment.objects.get()
    assert segment.name == "Hot VPs"
    assert AuditEvent.objects.filter(action="segment.created", object_id=str(segment.pk)).exists()
    listed = marketer_client.get("/api/v1/segments/").json()
    assert listed["count"] == 1
    assert listed["results"][0]["lead_count"] == 1
    leads = marketer_client.get(f"/api/v1/segments/{segment.pk}/leads/").json()
    assert [row["id"] for row in leads["results"]] == [match.pk]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            {"field": "shoe_size", "operator": "equals", "value": "42"},
            "Condition 2 (shoe_size): unknown field 'shoe_size'",
        ),
        (
            {"field": "score", "operator": "contains", "value": "5"},
            "Condition 2 (score): operator 'contains' is not valid for score",
        ),
        ({"field": "score", "operator": "gte", "value": "fifty"}, "Condition 2 (score): 'fifty' is not a number."),
        (
            {"field": "score", "operator": "between", "value": [80, 20]},
            "Condition 2 (score): the range [80, 20] is empty",
        ),
        ({"field": "stage", "operator": "equals", "value": "hot"}, "Condition 2 (stage): 'hot' is not a stage"),
        ({"field": "title", "operator": "regex", "value": "(a+)+$"}, "Condition 2 (title):"),
        ({"behaviour": "page_visit"}, "Condition 2 (page_visit): unknown interaction type 'page_visit'"),
        ({"behaviour": "page_view", "at_least": 0}, "Condition 2 (page_view): 'at_least' is a whole number from 1"),
        (
            {"behaviour": "page_view", "within_days": "thirty"},
            "Condition 2 (page_view): 'within_days' is a whole number",
        ),
        ({"behaviour": "email_open", "never": True, "at_least": 3}, "Condition 2 (email_open): 'never' and 'at_least'"),
        (
            {"behaviour": "page_view", "property": "url", "operator": "starts"},
            "Condition 2 (page_view): operator 'starts'",
        ),
        (
            {"behaviour": "page_view", "operator": "contains", "value": "x"},
            "Condition 2 (page_view): give the property",
        ),
        ({"colour": "red"}, "Condition 2 (?): a condition has a 'field'"),
    ],
)
def test_a_bad_condition_is_a_400_naming_it_and_nothing_is_stored(marketer_client, condition, message):
    definition = {"conditions": [{"field": "score", "operator": "gte", "value": 10}, condition]}
    response = marketer_client.post("/api/v1/segments/", {"name": "Bad", "definition": definition}, format="json")
    assert response.status_code == 400
    assert response.json()["message"].startswith(message), response.json()["message"]
    assert response.json()["errors"]["definition"][0].startswith(message)
    assert not Segment.objects.exists()


def test_other_bad_input_is_a_400(marketer_client):
    for body, message in [
        ({"name": "", "definition": VP_PRICING}, "Give the segment a name."),
        ({"name": "X", "definition": {"match": "some", "conditions": VP_PRICING["conditions"]}}, "match is 'all'"),
        ({"name": "X", "definition": {"conditions": []}}, "A segment needs at least one condition."),
        ({"name": "X", "definition": "score > 5"}, "The definition is an object"),
        ({"name": "X", "kind": "dynamic"}, "kind is one of"),
        ({"name": "X", "kind": "static", "definition": VP_PRICING}, "A static list has no conditions"),
        ({"name": "X", "definition": VP_PRICING, "colour": 1}, "Unknown field(s): colour."),
    ]:
        response = marketer_client.post("/api/v1/segments/", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["message"].startswith(message), response.json()
    marketer_client.post("/api/v1/segments/", {"name": "Taken", "definition": VP_PRICING}, format="json")
    again = marketer_client.post("/api/v1/segments/", {"name": "taken", "definition": VP_PRICING}, format="json")
    assert again.status_code == 400
    assert Segment.objects.count() == 1
    assert marketer_client.get("/api/v1/segments/abc/").status_code == 404
    assert marketer_client.get("/api/v1/segments/999/").status_code == 404
    assert marketer_client.get("/api/v1/leads/?segment=abc").status_code == 400


def test_patch_changes_the_conditions_and_the_members_follow(marketer_client):
    high = LeadFactory(score=80)
    low = LeadFactory(score=20)
    segment = marketer_client.post(
        "/api/v1/segments/",
        {"name": "High", "definition": {"conditions": [{"field": "score", "operator": "gte", "value": 50}]}},
        format="json",
    ).json()
    assert segment["lead_count"] == 1
    patched = marketer_client.patch(
        f"/api/v1/segments/{segment['id']}/",
        {"name": "Low", "definition": {"conditions": [{"field": "score", "operator": "lt", "value": 50}]}},
        format="json",
    )
    assert patched.status_code == 400
    assert "Condition 1 (score): operator 'lt'" in patched.json()["message"]
    assert Segment.objects.get().name == "High"
    patched = marketer_client.patch(
        f"/api/v1/segments/{segment['id']}/",
        {"name": "Low", "definition": {"conditions": [{"field": "score", "operator": "lte", "value": 50}]}},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Low"
    leads = marketer_client.get(f"/api/v1/segments/{segment['id']}/leads/").json()
    assert [row["id"] for row in leads["results"]] == [low.pk]
    assert high.pk not in [row["id"] for row in leads["results"]]
    assert marketer_client.delete(f"/api/v1/segments/{segment['id']}/").status_code == 204
    assert not Segment.objects.exists()


def test_sales_reps_read_but_do_not_write_and_anonymous_callers_are_refused(marketer_client, sales_client, anon_client):
    segment = marketer_client.post("/api/v1/segments/", {"name": "VPs", "definition": VP_PRICING}, format="json")
    segment_id = segment.json()["id"]
    assert sales_client.get("/api/v1/segments/").status_code == 200
    assert sales_client.get(f"/api/v1/segments/{segment_id}/").status_code == 200
    assert sales_client.get(f"/api/v1/segments/{segment_id}/leads/").status_code == 200
    assert (
        sales_client.post("/api/v1/segments/", {"name": "Mine", "definition": VP_PRICING}, format="json").status_code
        == 403
    )
    assert sales_client.patch(f"/api/v1/segments/{segment_id}/", {"name": "Renamed"}, format="json").status_code == 403
    assert sales_client.delete(f"/api/v1/segments/{segment_id}/").status_code == 403
    static = marketer_client.post("/api/v1/segments/", {"name": "List", "kind": "static"}, format="json").json()
    lead = LeadFactory()
    assert (
        sales_client.post(f"/api/v1/segments/{static['id']}/members/", {"leads": [lead.pk]}, format="json").status_code
        == 403
    )
    for call in (
        anon_client.get("/api/v1/segments/"),
        anon_client.get(f"/api/v1/segments/{segment_id}/leads/"),
        anon_client.post("/api/v1/segments/", {"name": "Anon", "definition": VP_PRICING}, format="json"),
        anon_client.delete(f"/api/v1/segments/{segment_id}/"),
    ):
        assert call.status_code in (401, 403)
    assert list(Segment.objects.order_by("name").values_list("name", flat=True)) == ["List", "VPs"]
    assert not SegmentMember.objects.exists()


def test_segment_leads_are_paginated_like_the_leads_list_in_fixed_queries(marketer_client, django_assert_num_queries):
    leads = [_vip() for _ in range(7)]
    segment_id = marketer_client.post(
        "/api/v1/segments/", {"name": "VPs", "definition": VP_PRICING}, format="json"
    ).json()["id"]
    marketer_client.get("/api/v1/me/")  # warm the token user's roles path

    # auth token + user groups, the segment, the page with its total (COUNT(*) OVER (), owner and
    # company joined): the segment's conditions run once.
    with django_assert_num_queries(4):
        first = marketer_client.get(f"/api/v1/segments/{segment_id}/leads/?page_size=3")
    body = first.json()
    assert body["count"] == 7
    assert len(body["results"]) == 3
    assert body["next"].endswith("page=2&page_size=3")
    assert body["previous"] is None
    same_shape = marketer_client.get("/api/v1/leads/?page_size=3").json()["results"][0]
    assert set(body["results"][0]) == set(same_shape)
    assert [row["id"] for row in body["results"]] == [lead.pk for lead in reversed(leads)][:3]
    last = marketer_client.get(f"/api/v1/segments/{segment_id}/leads/?page=3&page_size=3").json()
    assert [row["id"] for row in last["results"]] == [leads[0].pk]

    for _ in range(5):
        _vip()
    with django_assert_num_queries(4):
        assert marketer_client.get(f"/api/v1/segments/{segment_id}/leads/?page_size=3").json()["count"] == 12
    assert marketer_client.get(f"/api/v1/segments/{segment_id}/leads/?page=9&page_size=3").status_code == 404
    assert marketer_client.get(f"/api/v1/segments/{segment_id}/leads/?page=x").status_code == 404


def test_the_segment_list_counts_each_segment_with_one_query(marketer_client, django_assert_num_queries):
    _vip()
    for i in range(4):
        marketer_client.post(
            "/api/v1/segments/",
            {"name": f"S{i}", "definition": {"conditions": [{"field": "score", "operator": "gte", "value": i * 30}]}},
            format="json",
        )
    # auth token + groups, count, page of segments (creator joined), one live count per segment of
    # the page (4): one cheap count each measured faster at 100k leads than one statement for all.
    with django_assert_num_queries(8):
        body = marketer_client.get("/api/v1/segments/").json()
    assert [row["lead_count"] for row in body["results"]] == [1, 1, 1, 0]


def test_static_lists_take_leads_by_id_email_and_csv_and_give_them_back(marketer_client):
    ann = LeadFactory(email="ann@acme.example")
    bob = LeadFactory(email="bob@acme.example")
    cy = LeadFactory(email="cy@acme.example")
    segment_id = marketer_client.post(
        "/api/v1/segments/", {"name": "Trade show", "kind": "static"}, format="json"
    ).json()["id"]
    url = f"/api/v1/segments/{segment_id}/members/"

    added = marketer_client.post(url, {"leads": [ann.pk, ann.pk, 999999]}, format="json").json()
    assert added == {"added": 1, "unknown_emails": [], "lead_count": 1}
    by_email = marketer_client.post(url, {"emails": ["BOB@acme.example", "nobody@x.example"]}, format="json").json()
    assert by_email == {"added": 1, "unknown_emails": ["nobody@x.example"], "lead_count": 2}
    csv_file = SimpleUploadedFile("list.csv", b"name,email\nCy,cy@acme.example\nAnn,ann@acme.example\n", "text/csv")
    from_csv = marketer_client.post(url, {"file": csv_file}, format="multipart").json()
    assert from_csv == {"added": 1, "unknown_emails": [], "lead_count": 3}
    leads = marketer_client.get(f"/api/v1/segments/{segment_id}/leads/").json()
    assert {row["id"] for row in leads["results"]} == {ann.pk, bob.pk, cy.pk}

    removed = marketer_client.delete(url, {"leads": [bob.pk]}, format="json").json()
    assert removed == {"removed": 1, "lead_count": 2}
    assert set(SegmentMember.objects.values_list("lead_id", flat=True)) == {ann.pk, cy.pk}

    bad = marketer_client.post(url, {"file": SimpleUploadedFile("x.csv", b"no emails here\n")}, format="multipart")
    assert bad.status_code == 400
    assert bad.json()["message"] == "No email address found in the CSV file."
    assert marketer_client.post(url, {"leads": ["x"]}, format="json").status_code == 400
    assert SegmentMember.objects.count() == 2


def test_a_smart_segment_takes_no_hand_picked_members(marketer_client):
    lead = LeadFactory()
    segment_id = marketer_client.post(
        "/api/v1/segments/", {"name": "VPs", "definition": VP_PRICING}, format="json"
    ).json()["id"]
    response = marketer_client.post(f"/api/v1/segments/{segment_id}/members/", {"leads": [lead.pk]}, format="json")
    assert response.status_code == 409
    assert not SegmentMember.objects.exists()

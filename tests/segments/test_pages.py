"""The segment pages: the list with live counts, the condition builder (no JSON), its
validation messages (the API's), a segment's page, save-as-segment from the leads list, and
static lists from the lead page and a CSV upload; each for the roles allowed."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leads import services
from leads.models import Segment, SegmentMember
from tests.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _row(**values) -> dict:
    row = dict.fromkeys(
        (
            "type",
            "field",
            "custom",
            "operator",
            "value",
            "value2",
            "behaviour",
            "mode",
            "at_least",
            "within_days",
            "property",
            "prop_operator",
            "prop_value",
        ),
        "",
    )
    row.update(values)
    return row


def _post_rows(rows: list[dict], **fields) -> dict:
    data = {"name": "Hot VPs", "description": "", "kind": "smart", "match": "all", **fields}
    for key in rows[0]:
        data[f"c_{key}"] = [row[key] for row in rows]
    return data


def test_the_builder_saves_field_and_behaviour_rows_as_the_api_shape(marketer_web):
    rows = [
        _row(type="field", field="title", operator="contains", value="VP"),
        _row(type="field", field="score", operator="between", value="40", value2="90"),
        _row(type="field", field="stage", operator="in", value="mql, sal"),
        _row(type="field", field="custom", custom="plan", operator="equals", value="pro"),
        _row(type="field", field="phone", operator="empty"),
        _row(
            type="behaviour",
            behaviour="page_view",
            mode="at_least",
            at_least="2",
            within_days="30",
            property="url",
            prop_operator="contains",
            prop_value="/pricing",
        ),
        _row(type="behaviour", behaviour="email_open", mode="never", at_least="1", prop_operator="equals"),
    ]
    response = marketer_web.post("/segments/new/", _post_rows(rows))
    assert response.status_code == 302, response.content.decode()[:3000]
    segment = Segment.objects.get()
    assert segment.definition == {
        "match": "all",
        "conditions": [
            {"field": "title", "operator": "contains", "value": "VP"},
            {"field": "score", "operator": "between", "value": [40, 90]},
            {"field": "stage", "operator": "in", "value": ["mql", "sal"]},
            {"field": "custom.plan", "operator": "equals", "value": "pro"},
            {"field": "phone", "operator": "present", "value": False},
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
    # The editor shows the rows back as they were built.
    edit = marketer_web.get(f"/segments/{segment.pk}/edit/").content.decode()
    assert 'value="/pricing"' in edit and 'value="40"' in edit and 'value="90"' in edit
    assert '<option value="never" selected>' in edit
    assert '<option value="empty" data-kinds="text tags owner form custom" selected>' in edit
    assert 'name="c_custom" value="plan"' in edit


def test_the_builder_shows_the_apis_messages_and_saves_nothing(marketer_web):
    rows = [
        _row(type="field", field="score", operator="gte", value="fifty"),
        _row(type="behaviour", behaviour="page_view", mode="at_least", at_least="0", prop_operator="equals"),
    ]
    response = marketer_web.post("/segments/new/", _post_rows(rows))
    html = response.content.decode()
    assert response.status_code == 400
    assert "Condition 1 (score): &#x27;fifty&#x27; is not a number." in html
    assert "Condition 2 (page_view): &#x27;at_least&#x27; is a whole number from 1 to 1000." in html
    assert 'value="fifty"' in html  # the rows are shown back to be mended
    assert not Segment.objects.exists()


def test_the_segments_page_lists_live_counts_and_a_segments_page_lists_its_leads(marketer_web, rep_web):
    hot = LeadFactory(email="hot@x.example", score=80)
    InteractionFactory(lead=hot, type="demo_request")
    LeadFactory(email="cold@x.example", score=80)
    segment = services.segment_create(
        data={"name": "Demo askers", "definition": {"conditions": [{"behaviour": "demo_request"}]}}
    )
    listing = marketer_web.get("/segments/")
    html = listing.content.decode()
    assert "Demo askers" in html and "did demo request at least 1 time" in html
    assert listing.context["rows"][0]["count"] == 1
    assert "New segment" in html

    page = marketer_web.get(f"/segments/{segment.pk}/")
    assert page.status_code == 200
    assert [lead.email for lead in page.context["page"].leads] == ["hot@x.example"]
    assert "Edit segment" in page.content.decode()

    InteractionFactory(lead=LeadFactory(), type="demo_request")  # the count is live
    assert marketer_web.get("/segments/").context["rows"][0]["count"] == 2

    # Sales reps read segments but do not edit them.
    rep_listing = rep_web.get("/segments/")
    assert rep_listing.status_code == 200 and "New segment" not in rep_listing.content.decode()
    assert rep_web.get(f"/segments/{segment.pk}/").status_code == 200
    assert rep_web.get("/segments/new/").status_code == 403
    assert rep_web.post(f"/segments/{segment.pk}/delete/").status_code == 403
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_anonymous_visitors_are_sent_to_log_in(client):
    for url in ("/segments/", "/segments/new/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_saving_the_leads_list_filters_as_a_segment(marketer_web, sales_rep):
    match = LeadFactory(stage="mql", score=70, source="webinar", owner=sales_rep)
    LeadFactory(stage="mql", score=20, source="webinar", owner=sales_rep)
    LeadFactory(stage="sal", score=90, source="webinar")
    response = marketer_web.post(
        "/segments/from-filters/",
        {"segment_name": "Webinar MQLs", "stage": "mql", "score_min": "50", "source": "webinar"},
        follow=True,
    )
    segment = Segment.objects.get(name="Webinar MQLs")
    assert segment.definition["conditions"] == [
        {"field": "stage", "operator": "in", "value": ["mql"]},
        {"field": "score", "operator": "gte", "value": 50},
        {"field": "source", "operator": "equals", "value": "webinar"},
    ]
    assert "Segment “Webinar MQLs” saved: 1 lead now." in _messages(response)
    assert [lead.pk for lead in response.context["page"].leads] == [match.pk]

    refused = marketer_web.post("/segments/from-filters/", {"segment_name": "Search", "q": "acme"}, follow=True)
    assert "A text search cannot be saved as a segment; use the other filters." in _messages(refused)
    nothing = marketer_web.post("/segments/from-filters/", {"segment_name": "Everyone"}, follow=True)
    assert "Pick some filters first" in _messages(nothing)[0]
    assert Segment.objects.count() == 1


def test_the_leads_list_offers_the_segment_picker_and_the_save_form(marketer_web, rep_web):
    segment = services.segment_create(
        data={"name": "Scored", "definition": {"conditions": [{"field": "score", "operator": "gte", "value": 1}]}}
    )
    html = marketer_web.get("/leads/?stage=mql").content.decode()
    assert 'id="f-segment"' in html
    assert f'<option value="{segment.pk}" >Scored</option>' in html
    assert 'id="save-segment"' in html
    assert 'id="save-segment"' not in rep_web.get("/leads/").content.decode()


def test_static_lists_from_the_lead_page_and_a_csv(marketer_web, rep_web):
    lead = LeadFactory(email="ann@acme.example")
    other = LeadFactory(email="bob@acme.example")
    booth = services.segment_create(data={"name": "Booth visitors", "kind": "static"})

    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    assert "On no static list." in page and "Booth visitors" in page
    added = marketer_web.post(f"/leads/{lead.pk}/lists/", {"list": booth.pk}, follow=True)
    assert "Added to “Booth visitors”." in _messages(added)
    assert list(SegmentMember.objects.values_list("lead_id", flat=True)) == [lead.pk]
    assert 'aria-label="Remove from Booth visitors"' in marketer_web.get(f"/leads/{lead.pk}/").content.decode()

    csv_file = SimpleUploadedFile("list.csv", b"email\nbob@acme.example\nghost@acme.example\n", "text/csv")
    uploaded = marketer_web.post(f"/segments/{booth.pk}/members/", {"file": csv_file}, follow=True)
    assert "1 lead(s) added to “Booth visitors”. 1 email(s) match no lead: ghost@acme.example" in _messages(uploaded)
    assert {lead.pk for lead in uploaded.context["page"].leads} == {lead.pk, other.pk}

    removed = marketer_web.post(
        f"/segments/{booth.pk}/members/", {"action": "remove", "ids": [lead.pk], "next": f"/leads/{lead.pk}/"}
    )
    assert removed.status_code == 302 and removed["Location"] == f"/leads/{lead.pk}/"
    assert list(SegmentMember.objects.values_list("lead_id", flat=True)) == [other.pk]

    assert rep_web.post(f"/leads/{lead.pk}/lists/", {"list": booth.pk}).status_code == 403
    assert rep_web.post(f"/segments/{booth.pk}/members/", {"ids": [lead.pk]}).status_code == 403
    assert list(SegmentMember.objects.values_list("lead_id", flat=True)) == [other.pk]


def test_a_segments_page_runs_the_same_queries_for_5_or_30_members(marketer_web, django_assert_num_queries):
    segment = services.segment_create(
        data={"name": "Readers", "definition": {"conditions": [{"behaviour": "content_download", "at_least": 1}]}}
    )

    def add_members(n: int) -> None:
        for _ in range(n):
            InteractionFactory(lead=LeadFactory(), type="content_download")

    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert marketer_web.get(f"/segments/{segment.pk}/").status_code == 200
        return len(ctx.captured_queries)

    add_members(5)
    page_queries()  # warms the cached filter-menu sources
    small = page_queries()
    add_members(25)
    # session, user, roles; the segment (checked, read by the filter, read for the heading); the
    # page of members (one query, the behaviour an EXISTS), the capped count; the menus (reps,
    # sequences, segments).
    with django_assert_num_queries(small):
        response = marketer_web.get(f"/segments/{segment.pk}/")
    assert len(response.context["page"].leads) == 30
    assert small <= 12


def test_the_segments_list_counts_each_segment_with_one_query(marketer_web, django_assert_num_queries):
    for i in range(6):
        services.segment_create(
            data={"name": f"S{i}", "definition": {"conditions": [{"field": "score", "operator": "gte", "value": i}]}}
        )
    LeadFactory(score=3)
    # session, user, roles, the segments, one live count per segment (6): one cheap count each
    # measured faster at 100k leads than one statement for all of them.
    with django_assert_num_queries(10):
        response = marketer_web.get("/segments/")
    assert [row["count"] for row in response.context["rows"]] == [1, 1, 1, 1, 0, 0]

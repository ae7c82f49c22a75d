import re
from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Lead, StageTransition
from tests.dashboard.conftest import walk
from tests.factories import CompanyFactory, InteractionFactory, LeadFactory

XSS = "<script>alert(1)</script>"


def ids_on(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)"', body)]


@pytest.mark.django_db
def test_searching_finds_leads_by_name_email_or_company(marketer_web):
    ana = LeadFactory(first_name="Ana", last_name="Lopez", email="ana@globex.example")
    # Names are fixed: the factory's random last names could otherwise match "lopez".
    bo = LeadFactory(first_name="Bo", last_name="Berg", company=CompanyFactory(name="Initech"))
    LeadFactory(first_name="Cy", last_name="Chen", email="cy@other.example")
    body = marketer_web.get("/leads/?q=lopez").content.decode()
    assert ids_on(body) == [ana.pk]
    # A text search is not counted over every lead; the page says what it found.
    assert "1 lead match “lopez”" in body
    assert ids_on(marketer_web.get("/leads/?q=GLOBEX").content.decode()) == [ana.pk]
    assert ids_on(marketer_web.get("/leads/?q=initech").content.decode()) == [bo.pk]
    assert ids_on(marketer_web.get("/leads/?q=Ana Lopez").content.decode()) == [ana.pk]


@pytest.mark.django_db
def test_filters_combine_stage_owner_score_source_and_created_dates(marketer_web, sales_rep):
    old = timezone.now() - timedelta(days=40)
    hit = LeadFactory(stage="mql", owner=sales_rep, score=70, source="webinar")
    LeadFactory(stage="mql", owner=sales_rep, score=30, source="webinar")
    LeadFactory(stage="visitor", score=90, source="webinar")
    LeadFactory(stage="mql", owner=sales_rep, score=80, source="webinar", created_at=old)
    query = f"/leads/?stage=mql&owner={sales_rep.pk}&score_min=50&score_max=100&source=webinar"
    query += f"&created_from={(timezone.now() - timedelta(days=7)).date()}"
    assert ids_on(marketer_web.get(query).content.decode()) == [hit.pk]
    assert ids_on(marketer_web.get("/leads/?owner=none&stage=visitor").content.decode()) != [hit.pk]


@pytest.mark.django_db
def test_bad_filter_values_are_explained_not_a_500(marketer_web):
    response = marketer_web.get("/leads/?score_min=lots&stage=nonsense&created_from=yesterday&cursor=%%%")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Minimum score must be a whole number." in body and "Unknown stage: nonsense" in body
    assert "Created from must be a date" in body


@pytest.mark.django_db
def test_sorting_by_score_and_keyset_pages_cover_every_lead_once(marketer_web):
    leads = [LeadFactory(score=i % 7) for i in range(57)]
    first = marketer_web.get("/leads/?sort=-score").content.decode()
    page1 = ids_on(first)
    assert len(page1) == 50
    scores = dict(Lead.objects.values_list("pk", "score"))
    assert [scores[i] for i in page1] == sorted((scores[i] for i in page1), reverse=True)
    next_link = re.search(r'href="\?([^"]*cursor=[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    page2 = ids_on(marketer_web.get("/leads/?" + next_link).content.decode())
    assert len(page2) == 7
    assert set(page1) | set(page2) == {lead.pk for lead in leads} and not set(page1) & set(page2)
    assert "57 leads match" in first


@pytest.mark.django_db
def test_the_drill_down_by_entered_stage_lists_leads_that_entered_it_in_the_period(marketer_web, funnel_world):
    today = timezone.localdate()
    url = f"/leads/?entered=sql&since={today - timedelta(days=30)}&until={today}"
    assert sorted(ids_on(marketer_web.get(url).content.decode())) == sorted(lead.pk for lead in funnel_world[:2])
    long_ago = "/leads/?entered=sql&since=2001-01-01&until=2001-12-31"
    assert ids_on(marketer_web.get(long_ago).content.decode()) == []


@pytest.mark.django_db
def test_the_export_button_carries_the_filters_to_the_csv_endpoint(marketer_web, marketer):
    body = marketer_web.get("/leads/?stage=mql&q=acme&score_min=40&owner=me").content.decode()
    link = re.search(r'href="(/leads/export\.csv[^"]*)"', body).group(1).replace("&amp;", "&")
    assert "stage=mql" in link and "q=acme" in link and "score_min=40" in link and "owner=me" in link
    LeadFactory(stage="mql", email="x@acme.example", score=50, owner=marketer)
    export = marketer_web.get(link)
    assert export.status_code == 200
    assert b"x@acme.example" in b"".join(export.streaming_content)


@pytest.mark.django_db
def test_a_lead_named_like_a_script_is_shown_as_text_everywhere(marketer_web, rep_web, sales_rep):
    lead = LeadFactory(first_name=XSS, last_name="", title=XSS, company_name=XSS, owner=sales_rep)
    walk(lead, ["mql"], start=timezone.now() - timedelta(hours=1))
    Lead.objects.filter(pk=lead.pk).update(sla_due_at=timezone.now() + timedelta(hours=5), custom_fields={XSS: XSS})
    InteractionFactory(lead=lead, type="demo_request", properties={"title": XSS})
    StageTransition.objects.filter(lead=lead).update(reason=XSS)
    for client, url in ((marketer_web, "/leads/"), (marketer_web, f"/leads/{lead.pk}/"), (rep_web, "/queue/")):
        body = client.get(url).content.decode()
        assert XSS not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url


@pytest.mark.django_db
def test_the_leads_list_runs_the_same_queries_for_5_or_30_rows(marketer_web, django_assert_num_queries, sales_rep):
    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert marketer_web.get("/leads/?sort=-score").status_code == 200
        return len(ctx.captured_queries)

    for _ in range(5):
        LeadFactory(owner=sales_rep, company=CompanyFactory())
    page_queries()  # warms the cached filter-menu sources
    small = page_queries()
    for _ in range(25):
        LeadFactory(owner=sales_rep, company=CompanyFactory())
    # session, user, roles, the page of leads (owner + company joined), the capped count,
    # sales reps for the owner menu (sources are cached), sequences for the bulk menu, saved
    # segments for the segment picker and the list menu.
    with django_assert_num_queries(small):
        marketer_web.get("/leads/?sort=-score")
    assert small <= 10

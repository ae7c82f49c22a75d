"""The leads list's Export button exports exactly the list on screen: one filter parser for both."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dashboard.conftest import walk
from tests.factories import FormFactory, LeadFactory


@pytest.fixture
def varied_leads(marketer, sales_rep):
    """Seven leads that differ in every dimension the list filters on."""
    now = timezone.now()
    webinar = FormFactory(slug="webinar-signup")
    leads = [
        LeadFactory(first_name="Zelda", score=90, source="webinar", channel="event", first_form=webinar),
        LeadFactory(score=70, source="website", channel="inbound", utm_campaign="spring", owner=sales_rep),
        LeadFactory(score=40, source="website", channel="inbound", utm_campaign="spring", owner=marketer),
        LeadFactory(score=20, source="import", channel="import", owner=sales_rep),
        LeadFactory(score=10, source="website", channel="api"),
        LeadFactory(score=55, source="website", channel="inbound"),
        LeadFactory(score=5, source="website", channel="inbound"),
    ]
    for n, lead in enumerate(leads):
        lead.created_at = now - timedelta(days=2 * n)
        lead.save(update_fields=["created_at"])
    walk(leads[1], ["mql", "sal"], start=now - timedelta(days=3))
    walk(leads[3], ["mql"], start=now - timedelta(days=30))
    walk(leads[5], ["mql"], start=now - timedelta(days=1))
    return leads


def _list_ids(client, query: str) -> list[int]:
    page = client.get(f"/leads/?{query}").content.decode()
    table = page[page.index("<tbody") : page.index("</tbody>")]
    return [int(i) for i in re.findall(r'<a href="/leads/(\d+)/">', table)]


def _export_ids(client, url: str) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    return [int(row["id"]) for row in rows]


def _export_url_on_page(client, query: str) -> str:
    page = client.get(f"/leads/?{query}").content.decode()
    href = re.search(r'<a class="btn" href="([^"]+)" download[^>]*>Export CSV</a>', page).group(1)
    return href.replace("&amp;", "&")


@pytest.mark.django_db
def test_every_list_filter_narrows_the_export_identically(marketer_web, varied_leads, sales_rep):
    today = timezone.localdate()
    queries = [
        "q=Zelda",
        "stage=mql",
        "stage=sal",
        f"owner={sales_rep.pk}",
        "owner=me",
        "owner=none",
        "score_min=50",
        "score_max=30",
        "source=import",
        "channel=event",
        "channel=api",
        "form=webinar-signup",
        "campaign=spring",
        f"created_from={today - timedelta(days=5)}",
        f"created_to={today - timedelta(days=5)}",
        f"entered=mql&since={today - timedelta(days=7)}&until={today}",
        "sort=score",
        "score_min=10&score_max=60&source=website&sort=-score",
    ]
    everyone = _list_ids(marketer_web, "")
    assert len(everyone) == len(varied_leads)
    for query in queries:
        on_screen = _list_ids(marketer_web, query)
        exported = _export_ids(marketer_web, _export_url_on_page(marketer_web, query))
        assert exported == on_screen, query
        if not query.startswith("sort="):
            assert 0 < len(on_screen) < len(everyone), query


@pytest.mark.django_db
def test_the_export_button_posts_the_lists_own_filters(marketer_web, varied_leads):
    href = _export_url_on_page(marketer_web, "score_max=30&channel=api")
    assert href.startswith("/leads/export.csv?") and "score_max=30" in href and "channel=api" in href
    assert _export_ids(marketer_web, href) == [varied_leads[4].pk]


@pytest.mark.django_db
def test_a_malformed_filter_is_refused_by_the_export_not_ignored(marketer_web, varied_leads):
    response = marketer_web.get("/leads/export.csv?score_min=lots")
    assert response.status_code == 400
    assert "Minimum score must be a whole number." in response.content.decode()


@pytest.mark.django_db
def test_only_marketers_export(rep_web, varied_leads):
    assert rep_web.get("/leads/export.csv").status_code == 403

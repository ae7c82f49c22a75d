import re

import pytest

from tests.dashboard.conftest import walk
from tests.factories import LeadFactory


def _kpi(body: str, stage: str) -> int:
    match = re.search(
        rf'data-stage="{stage}">\s*<span class="label">[^<]*</span>\s*<a class="value" href="([^"]*)">([\d,]+)</a>',
        body,
    )
    assert match, f"no KPI for {stage}"
    return int(match.group(2).replace(",", ""))


@pytest.mark.django_db
def test_the_funnel_shows_leads_entering_each_stage_from_the_history(marketer_web, funnel_world):
    body = marketer_web.get("/?period=30d").content.decode()
    assert {s: _kpi(body, s) for s in ("visitor", "mql", "sal", "sql", "customer", "pql")} == {
        "visitor": 10,
        "mql": 6,
        "sal": 4,
        "sql": 2,
        "customer": 1,
        "pql": 1,
    }
    funnel = body[body.index('id="funnel"') :]
    # MQL → SAL: 4 of 6 MQL entries; SAL → SQL: 2 of 4; SQL → customer: 1 of 2; visitor → MQL: 6 of 10.
    assert re.findall(r'<span class="rate"><strong>([\d.]+%)</strong>', funnel)[:4] == ["60%", "66.7%", "50%", "50%"]


@pytest.mark.django_db
def test_every_funnel_number_links_to_the_leads_behind_it(marketer_web, funnel_world):
    body = marketer_web.get("/?period=30d").content.decode()
    link = re.search(
        r'data-stage="sal">\s*<span class="label">[^<]*</span>\s*<a class="value" href="([^"]*)"', body
    ).group(1)
    listing = marketer_web.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200
    shown = set(re.findall(r'name="ids" value="(\d+)"', listing.content.decode()))
    assert shown == {str(lead.pk) for lead in funnel_world[:4]}


@pytest.mark.django_db
def test_the_by_source_table_splits_the_funnel_and_links_each_cell(marketer_web, funnel_world):
    body = marketer_web.get("/?period=30d&group_by=source").content.decode()
    table = body[body.index('id="groups"') :]
    assert "webinar" in table and "website" in table
    link = re.search(r'href="(/leads/\?entered=sal[^"]*source=webinar[^"]*)"', table).group(1)
    listing = marketer_web.get(link.replace("&amp;", "&")).content.decode()
    assert set(re.findall(r'name="ids" value="(\d+)"', listing)) == {str(lead.pk) for lead in funnel_world[:4]}


@pytest.mark.django_db
def test_a_period_before_the_history_shows_zeros(marketer_web, funnel_world):
    body = marketer_web.get("/?since=2001-01-01&until=2001-02-01").content.decode()
    assert _kpi(body, "mql") == 0 and _kpi(body, "visitor") == 0


@pytest.mark.django_db
def test_mqls_past_their_sla_are_listed_on_the_funnel(marketer_web, sales_rep):
    from datetime import timedelta

    from django.utils import timezone

    late = LeadFactory(
        first_name="Late", last_name="Lead", owner=sales_rep, sla_due_at=timezone.now() - timedelta(hours=3)
    )
    walk(late, ["mql"], start=timezone.now() - timedelta(days=2))
    LeadFactory(first_name="Fresh", owner=sales_rep, stage="mql", sla_due_at=timezone.now() + timedelta(hours=3))
    body = marketer_web.get("/").content.decode()
    sla = body[body.index('id="sla"') :]
    assert "Late Lead" in sla and "overdue by 3h" in sla and "Fresh" not in sla

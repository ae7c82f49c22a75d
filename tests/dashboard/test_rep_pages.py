"""Reps' routing settings: admins edit them on /reps/; a rep sets their own away flag from the queue."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadfunnel.models import AuditEvent
from leads.models import SalesRepProfile
from leads.services import StageMove, leads_change_stage
from tests.factories import LeadFactory, UserFactory
from tests.factories import sales_rep as make_rep

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_web(admin_user, browser_for):
    return browser_for(admin_user)


@pytest.mark.parametrize(("who", "status"), [("admin_user", 200), ("marketer", 403), ("sales_rep", 403), (None, 302)])
def test_only_admins_open_the_reps_pages(request, browser_for, client, who, status, sales_rep):
    web = browser_for(request.getfixturevalue(who)) if who else client
    for url in ("/reps/", f"/reps/{sales_rep.pk}/"):
        response = web.get(url)
        assert response.status_code == status, url
        if who is None:
            assert response["Location"].startswith("/accounts/login/")
    if who != "admin_user":
        web.post(f"/reps/{sales_rep.pk}/", {"capacity": "1", "territories_text": "DE"})
        assert not SalesRepProfile.objects.filter(user=sales_rep).exists()


def test_an_admin_saves_a_reps_routing_settings(admin_web, admin_user, sales_rep, other_rep):
    manager = UserFactory(username="mona")
    page = admin_web.get("/reps/").content.decode()
    assert f'data-rep="{sales_rep.pk}"' in page and f'data-rep="{other_rep.pk}"' in page
    body = {
        "is_away": "on",
        "capacity": "12",
        "manager": str(manager.pk),
        "territories_text": "DACH, fr\nSpain\n\n",
        "company_sizes": ["1001-5000", "201-1000"],
    }
    response = admin_web.post(f"/reps/{sales_rep.pk}/", body)
    assert response.status_code == 302 and response["Location"] == "/reps/"
    profile = SalesRepProfile.objects.get(user=sales_rep)
    assert (profile.is_away, profile.capacity, profile.manager_id) == (True, 12, manager.pk)
    assert profile.territories == ["DACH", "fr", "Spain"]
    assert profile.company_sizes == ["201-1000", "1001-5000"]
    assert AuditEvent.objects.filter(action="rep.updated", object_id=str(profile.pk), actor=admin_user).exists()
    page = admin_web.get("/reps/").content.decode()
    assert "DACH, fr, Spain" in page and "away" in page
    form = admin_web.get(f"/reps/{sales_rep.pk}/").content.decode()
    assert "DACH\nfr\nSpain</textarea>" in form


def test_saved_territories_route_the_next_mql(admin_web, sales_rep, other_rep):
    SalesRepProfile.objects.create(user=sales_rep)
    SalesRepProfile.objects.create(user=other_rep)
    admin_web.post(f"/reps/{other_rep.pk}/", {"capacity": "100", "territories_text": "Nordics"})
    swede = LeadFactory(country="SE")
    leads_change_stage(moves=[StageMove(lead_id=swede.pk, to_stage="mql", cause="rule")])
    swede.refresh_from_db()
    assert swede.owner_id == other_rep.pk


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"capacity": "-1"}, "greater than or equal to 0"),
        ({"capacity": "5", "company_sizes": ["huge"]}, "huge is not one of the available choices"),
        ({"capacity": "5", "territories_text": "x" * 101}, "at most 100 characters"),
    ],
)
def test_bad_rep_settings_are_refused_with_a_message(admin_web, sales_rep, body, message):
    response = admin_web.post(f"/reps/{sales_rep.pk}/", body)
    assert response.status_code == 400 and message in response.content.decode()
    assert not SalesRepProfile.objects.filter(user=sales_rep).exists()


def test_a_rep_cannot_manage_themselves_and_a_non_rep_is_404(admin_web, sales_rep, marketer):
    response = admin_web.post(f"/reps/{sales_rep.pk}/", {"capacity": "5", "manager": str(sales_rep.pk)})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert admin_web.get(f"/reps/{marketer.pk}/").status_code == 404


def test_a_rep_sets_themselves_away_and_back_from_the_queue(rep_web, sales_rep, other_rep):
    queue = rep_web.get("/queue/").content.decode()
    assert "Set me away" in queue and 'action="/queue/away/"' in queue
    response = rep_web.post("/queue/away/", {"is_away": "true"}, follow=True)
    assert SalesRepProfile.objects.get(user=sales_rep).is_away is True
    assert "You are away" in response.content.decode() and "back" in response.content.decode()
    lead = LeadFactory()
    leads_change_stage(moves=[StageMove(lead_id=lead.pk, to_stage="mql", cause="rule")])
    lead.refresh_from_db()
    assert lead.owner_id == other_rep.pk  # away: skipped
    rep_web.post("/queue/away/", {"is_away": "false"})
    assert SalesRepProfile.objects.get(user=sales_rep).is_away is False


def test_only_reps_use_the_away_switch(marketer_web, client):
    assert marketer_web.post("/queue/away/", {"is_away": "true"}).status_code == 403
    assert client.post("/queue/away/", {"is_away": "true"}).status_code == 302
    assert not SalesRepProfile.objects.exists()


def test_the_reps_list_runs_the_same_queries_for_2_or_12_reps(admin_web, django_assert_num_queries):
    manager = UserFactory(username="mona")

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            rep = make_rep(f"rep-{i}", manager=manager, territories=["DE"], capacity=5)
            LeadFactory(stage="mql", owner=rep)

    add(2, 0)
    admin_web.get("/reps/")
    with CaptureQueriesContext(connection) as few:
        admin_web.get("/reps/")
    add(10, 2)
    # session, user, the reps with profile, manager and waiting count in one query
    with django_assert_num_queries(len(few.captured_queries)):
        page = admin_web.get("/reps/").content.decode()
    assert page.count("data-rep=") == 12 and "1 / 5" in page

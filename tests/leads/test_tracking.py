"""Website tracking: POST /api/v1/track/ (the script's page views), anonymous visitors identified
by a form or a tracked email link, retention, and the sites API."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadfunnel.models import AuditEvent
from leads import services, tracking
from leads.models import AnonymousPageView, Interaction, InteractionKey, Lead, TrackedSite, Visitor
from leads.tasks import anonymous_activity_purge
from tests.factories import FormFactory, LeadFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://www.acme.example"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
VISITOR = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def site(db):
    return TrackedSite.objects.create(name="Acme", public_key="lf_acmetestkey1", allowed_origins=[ORIGIN])


@pytest.fixture
def form(db):
    return FormFactory(slug="contact", name="Contact us", allowed_origins=[ORIGIN])


def track(client, body, *, origin=ORIGIN, ua=BROWSER, content_type="text/plain", **headers):
    extra = {"HTTP_USER_AGENT": ua, **headers}
    if origin is not None:
        extra["HTTP_ORIGIN"] = origin
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/v1/track/", data=raw, content_type=content_type, **extra)


def view(path="/", visitor=VISITOR, key="lf_acmetestkey1", **extra):
    return {"key": key, "visitor": visitor, "url": f"{ORIGIN}{path}", "title": "Acme", **extra}


def submit(client, data):
    return client.post(
        "/api/v1/forms/contact/submit/", data=json.dumps(data), content_type="application/json", HTTP_ORIGIN=ORIGIN
    )


def page_views(lead):
    return list(Interaction.objects.filter(lead=lead, type="page_view").order_by("occurred_at"))


# --- the anonymous visitor's pricing views count once they submit a form -----------------------


def test_an_anonymous_visitors_pricing_views_score_once_they_submit_a_form(anon_client, site, form, marketer_client):
    for path in ("/", "/pricing", "/pricing?plan=team"):
        assert track(anon_client, view(path)).status_code == 204
    assert AnonymousPageView.objects.count() == 3
    assert Interaction.objects.filter(type="page_view").count() == 0  # nothing scored while anonymous

    response = submit(
        anon_client,
        {"email": "ada@analytical.example", "first_name": "Ada", "lf_visitor": VISITOR, "lf_site": site.public_key},
    )
    assert response.status_code == 201, response.content

    lead = Lead.objects.get(email="ada@analytical.example")
    assert [i.properties["url"] for i in page_views(lead)] == [
        f"{ORIGIN}/",
        f"{ORIGIN}/pricing",
        f"{ORIGIN}/pricing?plan=team",
    ]
    assert "lf_visitor" not in lead.custom_fields and "lf_site" not in lead.custom_fields
    assert AnonymousPageView.objects.count() == 0  # moved to the lead, not copied
    assert Visitor.objects.get(key=VISITOR).lead_id == lead.pk

    score = marketer_client.get(f"/api/v1/leads/{lead.pk}/score/").json()
    pricing = [c for c in score["contributions"] if c["rule_name"] == "Visited the pricing page"]
    assert len(pricing) == 2 and sum(c["points"] for c in pricing) == 40
    views = {i.pk for i in page_views(lead) if "/pricing" in i.properties["url"]}
    assert {c["interaction"] for c in pricing} == views  # each point traced to the view that earned it
    assert any(r["name"] == "Visited the pricing page" and r["points"] == 40 for r in score["rules"])
    lead.refresh_from_db()
    assert lead.engagement_score >= 40 and lead.score == score["score"]


def test_identifying_twice_does_not_count_the_page_views_twice(anon_client, site, form, marketer_client):
    track(anon_client, view("/pricing"))
    body = {"email": "ada@analytical.example", "lf_visitor": VISITOR}
    assert submit(anon_client, body).status_code == 201
    lead = Lead.objects.get(email="ada@analytical.example")
    score_after_first = marketer_client.get(f"/api/v1/leads/{lead.pk}/score/").json()

    assert submit(anon_client, body).status_code == 201
    visitor = Visitor.objects.get(key=VISITOR)
    assert services.visitors_identify(visitor_ids=[visitor.pk], lead_id=lead.pk) == 0

    assert len(page_views(lead)) == 1
    assert InteractionKey.objects.filter(source="website").count() == 1
    score = marketer_client.get(f"/api/v1/leads/{lead.pk}/score/").json()
    pricing = [c for c in score["contributions"] if c["rule_name"] == "Visited the pricing page"]
    assert len(pricing) == 1

    def pricing_total(answer):
        return [r["points"] for r in answer["rules"] if r["name"] == "Visited the pricing page"]

    assert pricing_total(score) == pricing_total(score_after_first) == [20.0]


def test_the_same_view_identified_concurrently_is_recorded_once(site):
    """Two identifications racing over one view: its external id makes the second a duplicate."""
    lead = LeadFactory()
    visitor = Visitor.objects.create(site=site, key=VISITOR)
    pv = AnonymousPageView.objects.create(visitor=visitor, url=f"{ORIGIN}/pricing")
    event = {"lead": lead.pk, "type": "page_view", "properties": {"url": pv.url}, "external_id": f"pv:{pv.pk}"}
    services.interactions_record_bulk(events=[event], source=services.TRACKING_SOURCE)
    assert services.visitors_identify(visitor_ids=[visitor.pk], lead_id=lead.pk) == 0
    assert len(page_views(lead)) == 1


def test_later_page_views_of_an_identified_visitor_go_straight_to_the_lead(anon_client, site, form):
    # The form came first (no page view sent yet): the visitor is known from the form's site key.
    submit(anon_client, {"email": "ada@analytical.example", "lf_visitor": VISITOR, "lf_site": site.public_key})
    assert track(anon_client, view("/pricing", utm={"utm_source": "newsletter"})).status_code == 204
    lead = Lead.objects.get(email="ada@analytical.example")
    (interaction,) = page_views(lead)
    assert interaction.properties["url"] == f"{ORIGIN}/pricing"
    assert interaction.properties["utm_source"] == "newsletter"
    assert interaction.source == "website"
    assert AnonymousPageView.objects.count() == 0
    lead.refresh_from_db()
    assert lead.engagement_score > 0


def test_a_tracked_email_link_identifies_the_visitor(anon_client, site):
    lead = LeadFactory()
    track(anon_client, view("/pricing"))
    link = services.tracking_link_identify(url=f"{ORIGIN}/blog?x=1", lead_id=lead.pk)
    token = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))[tracking.IDENTIFY_PARAM]
    from urllib.parse import unquote

    assert track(anon_client, view("/blog", identify=unquote(token))).status_code == 204
    assert [i.properties["path"] for i in page_views(lead)] == ["/pricing", "/blog"]
    assert Visitor.objects.get(key=VISITOR).lead_id == lead.pk


def test_an_erased_leads_email_link_identifies_nobody(anon_client, site, admin_user):
    lead = LeadFactory()
    token = tracking.identify_token(lead.pk)
    services.lead_erase(lead=lead.pk, actor=admin_user)
    assert track(anon_client, view("/pricing", identify=token)).status_code == 204
    assert Visitor.objects.get(key=VISITOR).lead_id is None
    assert page_views(lead) == []
    assert AnonymousPageView.objects.count() == 1


def test_a_link_to_another_site_carries_no_identify_token(site):
    assert (
        services.tracking_link_identify(url="https://elsewhere.example/x", lead_id=1) == "https://elsewhere.example/x"
    )


def test_a_forged_identify_token_identifies_nobody(anon_client, site):
    lead = LeadFactory()
    assert track(anon_client, view("/pricing", identify=f"{lead.pk}:forged:token")).status_code == 204
    assert page_views(lead) == []
    assert AnonymousPageView.objects.count() == 1


# --- what the endpoint refuses ---------------------------------------------------------------


def test_cors_headers_only_for_the_sites_allowed_origins(anon_client, site):
    allowed = track(anon_client, view())
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed["Vary"]

    refused = track(anon_client, view(), origin="https://evil.example")
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    assert track(anon_client, view(), origin=None).status_code == 403
    assert AnonymousPageView.objects.count() == 1

    preflight = anon_client.options("/api/v1/track/", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    evil = anon_client.options("/api/v1/track/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in evil


def test_a_page_url_outside_the_sites_origins_is_refused(anon_client, site):
    response = track(anon_client, {**view(), "url": "https://evil.example/pricing"})
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    assert AnonymousPageView.objects.count() == 0


def test_do_not_track_is_respected(anon_client, site):
    assert track(anon_client, view(), HTTP_DNT="1").status_code == 204
    assert track(anon_client, view(), HTTP_SEC_GPC="1").status_code == 204
    assert AnonymousPageView.objects.count() == 0
    assert Visitor.objects.count() == 0


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0 Safari/537.36",
        "python-requests/2.32",
        "curl/8.5.0",
        "",
    ],
)
def test_bots_are_dropped_silently(anon_client, site, ua):
    assert track(anon_client, view(), ua=ua).status_code == 204
    assert AnonymousPageView.objects.count() == 0 and Visitor.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"visitor": VISITOR, "url": f"{ORIGIN}/"}, 400, "key"),
        (view(key="lf_nosuchsitekey"), 404, "key"),
        (view(visitor="x"), 400, "visitor"),
        (view(visitor="../../etc/passwd;drop"), 400, "visitor"),
        ({**view(), "url": "javascript:alert(1)"}, 400, "url"),
        ({**view(), "url": f"{ORIGIN}/" + "a" * 2100}, 400, "url"),
        ({**view(), "title": ["not", "text"]}, 400, "title"),
        ({**view(), "utm": "utm_source=x"}, 400, "utm"),
        ("[1, 2]", 400, None),
        ("not json", 400, None),
        (json.dumps({**view(), "padding": "x" * 9000}), 413, None),
    ],
)
def test_fake_traffic_is_a_clear_4xx_and_stores_nothing(anon_client, site, body, status, field):
    response = track(anon_client, body)
    assert response.status_code == status, response.content
    if field:
        assert field in response.json()["errors"]
    assert AnonymousPageView.objects.count() == 0 and Visitor.objects.count() == 0


def test_an_inactive_site_is_refused(anon_client, site):
    TrackedSite.objects.filter(pk=site.pk).update(active=False)
    assert track(anon_client, view()).status_code == 404


def test_the_rate_limit_answers_429(anon_client, site, settings):
    settings.TRACK_RATE_LIMIT = "3/min"
    answers = [track(anon_client, view()).status_code for _ in range(5)]
    assert answers == [204, 204, 204, 429, 429]
    assert AnonymousPageView.objects.count() == 3


def test_an_anonymous_page_view_takes_three_statements(anon_client, site):
    track(anon_client, view())  # the visitor exists; the view is as cheap for a new one
    with CaptureQueriesContext(connection) as queries:
        assert track(anon_client, view("/pricing")).status_code == 204
    # 1: the site by key; 2: upsert of the visitor (RETURNING its lead); 3: insert of the view.
    assert len(queries) == 3, [q["sql"] for q in queries]


# --- retention ---------------------------------------------------------------------------------


def test_retention_deletes_old_anonymous_activity_and_keeps_identified_visitors(site, settings):
    settings.RETENTION_ANONYMOUS_DAYS = 90
    now = timezone.now()
    lead = LeadFactory()
    old = Visitor.objects.create(
        site=site, key="a" * 32, created_at=now - timedelta(days=120), last_seen_at=now - timedelta(days=100)
    )
    AnonymousPageView.objects.create(visitor=old, url=f"{ORIGIN}/", occurred_at=now - timedelta(days=100))
    recent = Visitor.objects.create(site=site, key="b" * 32, created_at=now - timedelta(days=120))
    AnonymousPageView.objects.create(visitor=recent, url=f"{ORIGIN}/old", occurred_at=now - timedelta(days=91))
    kept = AnonymousPageView.objects.create(visitor=recent, url=f"{ORIGIN}/new", occurred_at=now - timedelta(days=89))
    known = Visitor.objects.create(site=site, key="c" * 32, lead=lead, last_seen_at=now - timedelta(days=300))

    assert anonymous_activity_purge.delay().get() == {"page_views": 2, "visitors": 1}
    assert list(AnonymousPageView.objects.values_list("pk", flat=True)) == [kept.pk]
    assert set(Visitor.objects.values_list("pk", flat=True)) == {recent.pk, known.pk}
    assert anonymous_activity_purge.delay().get() == {"page_views": 0, "visitors": 0}


# --- sites API and pages -------------------------------------------------------------------------


def test_marketers_manage_sites_through_the_api(marketer_client, sales_client):
    response = marketer_client.post(
        "/api/v1/sites/", {"name": "Acme", "allowed_origins": ["https://WWW.acme.example/"]}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["allowed_origins"] == [ORIGIN]
    assert body["public_key"].startswith("lf_") and body["public_key"] in body["snippet"]
    assert "/static/js/lf-track.js" in body["snippet"]
    patched = marketer_client.patch(f"/api/v1/sites/{body['id']}/", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False
    audits = AuditEvent.objects.filter(object_id=str(body["id"]), object_type="leads.trackedsite")
    assert audits.get(action="site.created").changes["allowed_origins"] == [ORIGIN]
    assert audits.get(action="site.updated").changes == {"active": [True, False]}
    bad = marketer_client.post("/api/v1/sites/", {"name": "Any", "allowed_origins": ["*"]}, format="json")
    assert bad.status_code == 400 and "allowed_origins" in bad.json()["errors"]
    assert sales_client.get("/api/v1/sites/").status_code == 403
    assert marketer_client.delete(f"/api/v1/sites/{body['id']}/").status_code == 204
    assert TrackedSite.objects.count() == 0


def test_the_sites_page_creates_a_site_and_shows_its_snippet(client, marketer, sales_rep):
    client.force_login(marketer)
    response = client.post(
        "/sites/", {"name": "Acme", "allowed_origins_text": "https://www.acme.example\n", "active": "on"}
    )
    site = TrackedSite.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/sites/{site.pk}/"
    page = client.get(f"/sites/{site.pk}/").content.decode()
    assert site.public_key in page and "lf-track.js" in page
    refused = client.post("/sites/", {"name": "Bad", "allowed_origins_text": "www.acme.example"})
    assert refused.status_code == 200 and "is not an origin" in refused.content.decode()
    client.force_login(sales_rep)
    assert client.get("/sites/").status_code == 403


def test_the_forms_page_shows_the_tracking_snippet_with_the_site_key(client, marketer, site, form):
    client.force_login(marketer)
    page = client.get("/forms/contact/").content.decode()
    assert site.public_key in page
    assert "lf_visitor" in page


def test_the_script_is_served_from_our_static_files(client):
    response = client.get("/static/js/lf-track.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"lf_vid" in body and b"doNotTrack" in body
    assert len(body) < 8_000  # small, no dependencies


def test_the_site_page_counts_visitors_and_their_recent_anonymous_views(anon_client, client, marketer, site):
    for visitor in (VISITOR, "f" * 32):
        assert track(anon_client, view("/pricing", visitor=visitor)).status_code == 204
    AnonymousPageView.objects.filter(visitor__key="f" * 32).update(occurred_at=timezone.now() - timedelta(days=8))
    client.force_login(marketer)
    page = client.get(f"/sites/{site.pk}/")
    assert page.context["site"].visitor_count == 2 and page.context["site"].identified_count == 0
    assert page.context["anonymous_views_7d"] == 1

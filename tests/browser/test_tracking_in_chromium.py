"""The tracking script in a real browser: a website on another origin loads lf-track.js from our
static files, its page views reach the live server, and the form snippet identifies the visitor."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leads import dashboard, tracking
from leads.models import AnonymousPageView, Interaction, Lead, TrackedSite, Visitor
from tests.browser.conftest import LAPTOP
from tests.factories import FormFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Headless Chromium says "HeadlessChrome" in its user agent, which the endpoint drops as a bot
# (as it should); the test browses as the desktop Chrome a visitor would use.
DESKTOP_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


class _Website:
    """A customer's website on its own origin (another port), serving the pages we give it."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def website():
    site = _Website()
    yield site
    site.close()


def _page(title: str, head: str, body: str = "") -> str:
    return f"<!doctype html><html><head><title>{title}</title>{head}</head><body><h1>{title}</h1>{body}</body></html>"


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the page view")


@pytest.fixture
def browser_context(chromium):
    context = chromium.new_context(viewport=LAPTOP, user_agent=DESKTOP_CHROME)
    context.set_default_timeout(10_000)
    yield context
    context.close()


def test_a_page_using_the_script_sends_page_views_and_the_form_identifies_the_visitor(
    browser_context, live_server, website
):
    site = TrackedSite.objects.create(name="Acme", public_key="lf_browsertest1", allowed_origins=[website.origin])
    form = FormFactory(slug="contact", name="Contact", allowed_origins=[website.origin])
    snippet = tracking.site_snippet(site.public_key).replace("http://127.0.0.1:8000", live_server.url)
    assert f"{live_server.url}/static/js/lf-track.js" in snippet
    endpoint = f"{live_server.url}/api/v1/forms/contact/submit/"
    website.pages["/pricing"] = _page("Pricing", snippet)
    website.pages["/contact"] = _page("Contact", snippet, dashboard.form_snippet(form, endpoint))
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{website.origin}/pricing?utm_source=ads")
    stored = _wait_for(lambda: AnonymousPageView.objects.first())
    assert stored.url == f"{website.origin}/pricing?utm_source=ads"
    assert stored.title == "Pricing" and stored.utm == {"utm_source": "ads"}
    cookie = next(c for c in browser_context.cookies(website.origin) if c["name"] == "lf_vid")
    assert Visitor.objects.get().key == cookie["value"]

    page.goto(f"{website.origin}/contact")
    _wait_for(lambda: AnonymousPageView.objects.count() == 2)
    assert page.input_value("input[name=lf_visitor]") == cookie["value"]
    page.fill("input[name=email]", "ada@analytical.example")
    page.click("button[type=submit]")
    page.wait_for_selector(".leadfunnel-message:not([hidden])")

    lead = _wait_for(lambda: Lead.objects.filter(email="ada@analytical.example").first())
    urls = list(Interaction.objects.filter(lead=lead, type="page_view").values_list("properties__url", flat=True))
    assert f"{website.origin}/pricing?utm_source=ads" in urls and f"{website.origin}/contact" in urls
    assert AnonymousPageView.objects.count() == 0
    lead.refresh_from_db()
    assert lead.engagement_score > 0
    assert not errors, errors


def test_do_not_track_and_a_consent_banner_keep_the_script_silent(browser_context, live_server, website):
    site = TrackedSite.objects.create(name="Acme", public_key="lf_browsertest2", allowed_origins=[website.origin])
    snippet = tracking.site_snippet(site.public_key).replace("http://127.0.0.1:8000", live_server.url)
    website.pages["/dnt"] = _page("DNT", snippet)
    website.pages["/banner"] = _page("Banner", snippet.replace("data-site=", 'data-consent="false" data-site='))

    dnt = browser_context.new_page()
    dnt.add_init_script("Object.defineProperty(navigator, 'doNotTrack', {get: () => '1'})")
    dnt.goto(f"{website.origin}/dnt")
    dnt.wait_for_load_state("networkidle")

    banner = browser_context.new_page()
    banner.goto(f"{website.origin}/banner")
    banner.wait_for_load_state("networkidle")
    assert AnonymousPageView.objects.count() == 0 and Visitor.objects.count() == 0
    assert not [c for c in browser_context.cookies(website.origin) if c["name"] == "lf_vid"]

    banner.evaluate("lfTrack('consent', true)")
    stored = _wait_for(lambda: AnonymousPageView.objects.first())
    assert stored.url == f"{website.origin}/banner"

"""The form editor: every setting created and edited from the page, bad origins refused with a
message, and the live preview of the embed snippet."""

import pytest

from leadfunnel.models import AuditEvent
from leads.models import Form
from tests.factories import FormFactory

pytestmark = pytest.mark.django_db

SETTINGS = {
    "name": "Berlin Expo badge scan",
    "kind": "event",
    "channel": "event",
    "channel_weight": "25",
    "allowed_origins_text": "https://www.example.com/\nhttp://localhost:8080\n\n",
    "honeypot_field": "fax_number",
    "overwrite_profile": "on",
    "success_message": "See you at booth 12!",
    "redirect_url": "https://www.example.com/thanks",
    "active": "on",
}


@pytest.mark.parametrize(("who", "status"), [("marketer", 200), ("admin_user", 200), ("sales_rep", 403), (None, 302)])
def test_only_marketers_and_admins_create_and_edit_forms(request, browser_for, client, who, status):
    web = browser_for(request.getfixturevalue(who)) if who else client
    FormFactory(slug="demo", name="Demo")
    for url in ("/forms/new/", "/forms/demo/edit/"):
        assert web.get(url).status_code == status, url
    posted = web.post("/forms/demo/edit/", {**SETTINGS})
    preview = web.post("/forms/snippet-preview/", {"slug": "x"})
    if who in ("sales_rep", None):
        assert posted.status_code == status and preview.status_code == status
        assert Form.objects.get(slug="demo").name == "Demo"


def test_creating_a_form_saves_every_setting(marketer_web, marketer):
    response = marketer_web.post("/forms/new/", {**SETTINGS, "slug": "berlin-expo"})
    assert response.status_code == 302 and response["Location"] == "/forms/berlin-expo/"
    form = Form.objects.get(slug="berlin-expo")
    assert (form.name, form.kind, form.channel, form.channel_weight) == ("Berlin Expo badge scan", "event", "event", 25)
    assert form.allowed_origins == ["http://localhost:8080", "https://www.example.com"]
    assert (form.honeypot_field, form.overwrite_profile, form.active) == ("fax_number", True, True)
    assert (form.success_message, form.redirect_url) == ("See you at booth 12!", "https://www.example.com/thanks")
    assert form.created_by == marketer
    page = marketer_web.get("/forms/berlin-expo/").content.decode()
    assert "fax_number" in page and "https://www.example.com/thanks" in page


def test_editing_a_form_saves_every_setting_and_keeps_its_slug(marketer_web, marketer):
    form = FormFactory(slug="contact", name="Contact", allowed_origins=["https://old.example"], overwrite_profile=True)
    page = marketer_web.get("/forms/contact/edit/").content.decode()
    assert "https://old.example</textarea>" in page and 'name="slug"' not in page

    body = {**SETTINGS, "slug": "hijacked"}
    body.pop("overwrite_profile")  # unticked
    body.pop("active")
    response = marketer_web.post("/forms/contact/edit/", body)
    assert response.status_code == 302 and response["Location"] == "/forms/contact/"
    form.refresh_from_db()
    assert (form.slug, form.name, form.kind, form.channel, form.channel_weight) == (
        "contact",
        "Berlin Expo badge scan",
        "event",
        "event",
        25,
    )
    assert form.allowed_origins == ["http://localhost:8080", "https://www.example.com"]
    assert (form.honeypot_field, form.overwrite_profile, form.active) == ("fax_number", False, False)
    assert (form.success_message, form.redirect_url) == ("See you at booth 12!", "https://www.example.com/thanks")
    audit = AuditEvent.objects.get(action="form.updated", object_id=str(form.pk))
    assert audit.actor == marketer and audit.changes["channel_weight"] == [5, 25]


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        ("example.com", "Line 1: “example.com” is not an origin"),
        ("https://ok.example\nhttps://www.example.com/landing", "Line 2: “https://www.example.com/landing”"),
        ("ftp://files.example", "Origins start with http:// or https://"),
        ("https://a.example:80x", "port that is not a number"),
    ],
)
def test_bad_origins_are_refused_with_a_message_and_nothing_changes(marketer_web, origins, message):
    form = FormFactory(slug="contact", allowed_origins=["https://old.example"])
    response = marketer_web.post("/forms/contact/edit/", {**SETTINGS, "allowed_origins_text": origins})
    assert response.status_code == 400
    assert message in response.content.decode()
    form.refresh_from_db()
    assert form.allowed_origins == ["https://old.example"] and form.name != SETTINGS["name"]
    created = marketer_web.post("/forms/new/", {**SETTINGS, "slug": "new-one", "allowed_origins_text": origins})
    assert created.status_code == 400 and message in created.content.decode()
    assert not Form.objects.filter(slug="new-one").exists()


def test_a_bad_redirect_or_a_real_field_as_spam_trap_is_refused(marketer_web):
    FormFactory(slug="contact", honeypot_field="website")
    bad_redirect = marketer_web.post("/forms/contact/edit/", {**SETTINGS, "redirect_url": "javascript:alert(1)"})
    assert bad_redirect.status_code == 400 and "starting with http:// or https://" in bad_redirect.content.decode()
    real_field = marketer_web.post("/forms/contact/edit/", {**SETTINGS, "honeypot_field": "email"})
    assert real_field.status_code == 400 and "cannot be a real lead field" in real_field.content.decode()
    assert Form.objects.get(slug="contact").honeypot_field == "website"


def test_the_snippet_preview_follows_the_settings_as_typed(marketer_web):
    body = {"slug": "Spring Webinar", "honeypot_field": "fax", "success_message": "Merci <b>!</b>", "redirect_url": ""}
    preview = marketer_web.post("/forms/snippet-preview/", body, HTTP_HX_REQUEST="true")
    html = preview.content.decode()
    assert preview.status_code == 200 and html.lstrip().startswith('<div id="snippet-preview">')
    assert "/api/v1/forms/spring-webinar/submit/" in html
    assert "name=&quot;fax&quot;" in html
    assert "Merci \\u003cb\\u003e!" in html  # escaped for the script and for the page
    redirect = marketer_web.post("/forms/snippet-preview/", {**body, "redirect_url": "https://example.com/ok"})
    assert "window.location.href = &quot;https://example.com/ok&quot;" in redirect.content.decode()
    # Editing: the preview uses the form's fixed slug; nothing is saved.
    FormFactory(slug="contact", honeypot_field="website")
    edited = marketer_web.post("/forms/snippet-preview/", {"current_slug": "contact", "honeypot_field": "pager"})
    assert "/api/v1/forms/contact/submit/" in edited.content.decode()
    assert Form.objects.get(slug="contact").honeypot_field == "website"


def test_the_editor_page_wires_the_live_preview(marketer_web):
    FormFactory(slug="contact")
    page = marketer_web.get("/forms/contact/edit/").content.decode()
    assert 'hx-post="/forms/snippet-preview/"' in page and 'hx-target="#snippet-preview"' in page
    assert "/api/v1/forms/contact/submit/" in page
    assert 'src="/static/vendor/htmx.min.js"' in page

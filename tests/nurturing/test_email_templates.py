"""The email template library: API, dashboard pages and the step editor's picker."""

import json
import re

import pytest

from leadfunnel.audit import AuditEvent
from nurturing.models import EmailTemplate

pytestmark = pytest.mark.django_db

URL = "/api/v1/email-templates/"
WELCOME = {
    "name": "Welcome",
    "subject": "Hi {{ lead.first_name }}",
    "body": "Hello!\n\nStart here: https://a.example/start",
}


def test_a_marketer_creates_lists_reads_changes_and_deletes_templates(marketer_client, marketer):
    created = marketer_client.post(URL, WELCOME, format="json")

    assert created.status_code == 201
    template_id = created.json()["id"]
    assert created.json()["body"] == WELCOME["body"]
    assert EmailTemplate.objects.get().created_by == marketer
    listing = marketer_client.get(URL).json()
    assert listing["count"] == 1 and listing["results"][0]["name"] == "Welcome"
    assert marketer_client.get(f"{URL}{template_id}/").json()["subject"] == WELCOME["subject"]

    changed = marketer_client.patch(f"{URL}{template_id}/", {"subject": "Welcome aboard"}, format="json")

    assert changed.status_code == 200 and changed.json()["subject"] == "Welcome aboard"
    assert changed.json()["body"] == WELCOME["body"]
    assert marketer_client.delete(f"{URL}{template_id}/").status_code == 204
    assert not EmailTemplate.objects.exists()
    assert marketer_client.get(f"{URL}{template_id}/").status_code == 404
    assert list(
        AuditEvent.objects.filter(object_type="nurturing.emailtemplate").values_list("action", flat=True).order_by("pk")
    ) == [
        "email_template.created",
        "email_template.updated",
        "email_template.deleted",
    ]


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({**WELCOME, "subject": "Hi {{ lead.salary }}"}, "subject", "Unknown merge field"),
        ({**WELCOME, "body": "<p>Hi<script>alert(1)</script></p>"}, "body", "<script> elements are not allowed"),
        ({**WELCOME, "body": '<a href="javascript:alert(1)">x</a>'}, "body", "javascript: URLs are not allowed"),
        ({**WELCOME, "name": ""}, "name", ""),
        ({"name": "X", "subject": "Hi"}, "body", "required"),
    ],
)
def test_a_bad_template_is_a_400_naming_the_field_and_nothing_is_stored(marketer_client, payload, field, message):
    response = marketer_client.post(URL, payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert field in body["errors"] and message in json.dumps(body)
    assert not EmailTemplate.objects.exists()


def test_template_names_are_unique_whatever_the_case(marketer_client):
    marketer_client.post(URL, WELCOME, format="json")

    response = marketer_client.post(URL, {**WELCOME, "name": "WELCOME "}, format="json")

    assert response.status_code == 400 and "already a template named" in response.json()["message"]
    assert EmailTemplate.objects.count() == 1


def test_sales_reps_and_anonymous_callers_cannot_use_templates(sales_client, anon_client):
    template = EmailTemplate.objects.create(**WELCOME)
    assert sales_client.get(URL).status_code == 403
    assert sales_client.post(URL, WELCOME, format="json").status_code == 403
    assert sales_client.delete(f"{URL}{template.pk}/").status_code == 403
    assert anon_client.get(URL).status_code in (401, 403)
    assert EmailTemplate.objects.count() == 1


def test_the_templates_page_creates_edits_and_deletes(client, marketer):
    client.force_login(marketer)
    assert "No templates yet" in client.get("/email-templates/").content.decode()

    created = client.post("/email-templates/new/", WELCOME)

    assert created.status_code == 302
    template = EmailTemplate.objects.get()
    page = client.get("/email-templates/").content.decode()
    assert "Welcome" in page and "Hi {{ lead.first_name }}" in page
    edit = client.get(f"/email-templates/{template.pk}/edit/").content.decode()
    assert "Start here: https://a.example/start" in edit
    assert client.post(f"/email-templates/{template.pk}/edit/", {**WELCOME, "name": "Welcome v2"}).status_code == 302
    template.refresh_from_db()
    assert template.name == "Welcome v2"

    bad = client.post(f"/email-templates/{template.pk}/edit/", {**WELCOME, "body": '<img src="x" onerror="a()">'})
    assert bad.status_code == 400 and "onerror= are not allowed" in bad.content.decode()
    template.refresh_from_db()
    assert template.body == WELCOME["body"]

    assert client.post(f"/email-templates/{template.pk}/delete/").status_code == 302
    assert not EmailTemplate.objects.exists()


def test_the_templates_pages_are_for_marketers(client, sales_rep):
    template = EmailTemplate.objects.create(**WELCOME)
    client.force_login(sales_rep)
    assert client.get("/email-templates/").status_code == 403
    assert client.post("/email-templates/new/", WELCOME).status_code == 403
    assert client.post(f"/email-templates/{template.pk}/delete/").status_code == 403
    assert EmailTemplate.objects.count() == 1


def test_the_step_editor_offers_the_templates_to_start_from(client, marketer):
    EmailTemplate.objects.create(**WELCOME)
    EmailTemplate.objects.create(
        name="Pricing", subject="Our prices", body="<p>See <a href='https://a.example/p'>prices</a></p>"
    )
    client.force_login(marketer)

    page = client.get("/sequences/new/").content.decode()

    assert 'class="template-pick"' in page and "template_picker.js" in page
    assert re.search(r'<option value="\d+">Pricing</option>', page)
    data = json.loads(
        re.search(r'<script id="email-templates-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    assert [t["name"] for t in data] == ["Pricing", "Welcome"]
    assert data[1]["subject"] == WELCOME["subject"] and data[1]["body"] == WELCOME["body"]

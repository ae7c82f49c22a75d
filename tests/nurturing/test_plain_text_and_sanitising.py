"""Plain-text email bodies (paragraphs, tracked bare links) and HTML sanitised by nh3."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from leads.models import Interaction
from nurturing import services
from nurturing.models import Message, Sequence
from nurturing.rendering import html_problems, render_email, sanitize_html
from tests.dashboard.test_marketing_pages import SEQUENCE
from tests.factories import CompanyFactory, LeadFactory
from tests.nurturing.helpers import make_sequence

PLAIN_BODY = (
    "Hi {{ lead.first_name }},\n"
    "thanks for visiting {{ company.name }}.\n"
    "\n"
    "Our pricing is at https://leadfunnel.example/pricing?plan=pro&src=mail. Questions? Reply.\n"
    "\n"
    "Ana"
)


def _render(body: str, context: dict | None = None):
    return render_email(
        subject="Hi",
        body=body,
        context=context or {},
        click_url=lambda i: f"https://t.example/c/{i}",
        open_url="https://t.example/o",
        unsubscribe_url="https://t.example/u",
    )


def test_plain_text_becomes_paragraphs_and_line_breaks_with_bare_urls_tracked():
    rendered = _render(PLAIN_BODY, {"lead.first_name": "Ana <b>", "company.name": "Globex"})

    assert rendered.html.startswith("<p>Hi Ana &lt;b&gt;,<br>\nthanks for visiting Globex.</p>\n<p>Our pricing is at ")
    assert (
        '<a href="https://t.example/c/0">https://leadfunnel.example/pricing?plan=pro&amp;src=mail</a>. Questions?'
        in rendered.html
    )
    assert "<p>Ana</p>" in rendered.html
    assert rendered.links == ["https://leadfunnel.example/pricing?plan=pro&src=mail"]
    # The text part keeps the original URL readable, and the line breaks.
    assert rendered.text.startswith("Hi Ana <b>,\nthanks for visiting Globex.\n\nOur pricing is at https://leadfunnel")
    assert "Unsubscribe: https://t.example/u" in rendered.text


def test_a_url_at_the_end_of_a_sentence_or_in_parentheses_keeps_its_punctuation_outside():
    rendered = _render("See (https://a.example/x) or https://b.example/Lead_(marketing), then https://c.example.")

    assert rendered.links == ["https://a.example/x", "https://b.example/Lead_(marketing)", "https://c.example"]
    assert "(<a href" in rendered.html and "</a>) or" in rendered.html and "</a>, then" in rendered.html


@pytest.mark.django_db
def test_a_plain_text_email_goes_out_with_a_tracked_bare_link_that_records_the_click(client):
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Pricing, {{ lead.first_name }}", "body": PLAIN_BODY}])
    lead = LeadFactory(first_name="Ana", company=CompanyFactory(name="Globex"))
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    services.process_due_steps(batch_size=10)

    [email] = mail.outbox
    html = email.alternatives[0][0]
    assert "<p>Hi Ana,<br>" in html and "</p>\n<p>" in html
    [href] = re.findall(r'<a href="([^"]+)">https://leadfunnel.example/pricing', html)
    assert "/t/c/" in href and "leadfunnel.example/pricing" not in href
    assert "https://leadfunnel.example/pricing?plan=pro&src=mail." in email.body  # text part: readable
    assert not Interaction.objects.filter(lead=lead, type="email_click").exists()

    response = client.get(urlsplit(href).path)

    assert response.status_code == 302
    assert response["Location"] == "https://leadfunnel.example/pricing?plan=pro&src=mail"
    click = Interaction.objects.get(lead=lead, type="email_click")
    assert click.properties["url"] == "https://leadfunnel.example/pricing?plan=pro&src=mail"
    assert Message.objects.get(lead=lead).clicked_at is not None


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("<p>Hi<script>alert(1)</script></p>", "<script> elements are not allowed"),
        ('<img src="x" onerror="alert(1)">', "onerror= are not allowed (on <img>)"),
        ('<p onclick="steal()">x</p>', "onclick="),
        ('<a href=" JaVaScRiPt:alert(1)">x</a>', "javascript: URLs are not allowed"),
        ('<iframe src="https://evil.example"></iframe>', "<iframe> elements"),
        ('<form action="https://evil.example"><input name="pw"></form>', "<form> elements"),
    ],
)
def test_the_sanitiser_names_what_it_would_remove(source, problem):
    problems = html_problems(source)

    assert any(problem in p for p in problems), problems
    cleaned = sanitize_html(source)
    assert "script" not in cleaned and "onerror" not in cleaned and "onclick" not in cleaned
    assert "javascript" not in cleaned.lower() and "iframe" not in cleaned and "<form" not in cleaned


def test_ordinary_email_html_passes_the_sanitiser_unchanged_in_substance():
    source = (
        '<table width="600" align="center" cellpadding="0"><tr><td style="color:#333;padding:8px">'
        '<h1>Hello {{ lead.first_name|default:"there" }}</h1><p>A &amp; B<br>'
        '<a href="https://a.example/x?y=1&amp;z=2">Read</a> <a href="mailto:hi@a.example">mail</a>'
        '<img src="https://a.example/logo.png" alt="logo" width="120"></p></td></tr></table>'
    )

    assert html_problems(source) == []
    cleaned = sanitize_html(source)
    assert 'style="color:#333;padding:8px"' in cleaned and 'width="600"' in cleaned
    assert '{{ lead.first_name|default:"there" }}' in cleaned


def test_an_html_body_stored_before_the_check_goes_out_sanitised():
    rendered = _render('<p onclick="x()">Hi <a href="https://a.example/">a</a></p><script>alert(1)</script>')

    assert "onclick" not in rendered.html and "<script" not in rendered.html and "alert" not in rendered.html
    assert rendered.links == ["https://a.example/"]


@pytest.mark.django_db
def test_the_api_refuses_an_email_body_the_sanitiser_would_change_and_stores_nothing(marketer_client):
    response = marketer_client.post(
        "/api/v1/sequences/",
        {"name": "X", "steps": [{"kind": "email", "subject": "Hi", "body": '<p style="x" onmouseover="a()">Hi</p>'}]},
        format="json",
    )

    assert response.status_code == 400
    assert "Unsafe HTML" in response.json()["message"] and "onmouseover=" in response.json()["message"]
    assert not Sequence.objects.exists()


def test_an_unsafe_attribute_is_caught_even_when_a_safe_element_of_the_same_kind_has_it():
    source = '<a href="https://a.example/">ok</a><a href="javascript:{{ lead.email }}">bad</a>'

    assert html_problems(source) == ["javascript: URLs are not allowed (in href= on <a>)."]


def test_merge_fields_with_defaults_survive_the_sanitiser_in_text_and_attributes():
    body = (
        "<p title='{{ lead.first_name|default:\"you\" }}'>"
        'Hi {{ lead.first_name|default:"a < b & c" }}, <a href="https://a.example/?who={{ lead.email }}">go</a></p>'
    )

    assert html_problems(body) == []
    rendered = _render(body, {"lead.email": "ann@x.example"})
    assert '<p title="you">Hi a &lt; b &amp; c, <a href="https://t.example/c/0">go</a></p>' in rendered.html
    assert rendered.links == ["https://a.example/?who=ann@x.example"]


@pytest.mark.django_db
def test_the_step_editor_refuses_unsafe_html_on_its_step_saying_what_would_be_removed(client, marketer):

    client.force_login(marketer)
    body = ['<p>Hi</p><img src="https://a.example/x.png" onerror="steal()">', "", "<p>Book a slot</p>"]

    response = client.post("/sequences/new/", {**SEQUENCE, "step_body": body})

    assert response.status_code == 400
    text = response.content.decode()
    assert "Step 1: body: Unsafe HTML: Event-handler attributes like onerror= are not allowed (on &lt;img&gt;)." in text
    assert not Sequence.objects.exists()

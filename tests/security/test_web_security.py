"""Mass assignment, tracking links, stored XSS, CSRF, login lockout, rate limits, audit log."""

import re

import pytest
from django.core import signing
from django.test import Client
from rest_framework.authtoken.models import Token

from leadfunnel.models import AuditEvent
from leads.models import FormSubmission, Lead, StageTransition
from tests.factories import FormFactory, LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = [pytest.mark.django_db]

XSS = '<script>alert("x")</script>'
XSS_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


# --- mass assignment ------------------------------------------------------------------------


def test_public_intake_never_sets_stage_score_owner_or_history(anon_client, sales_rep):
    FormFactory(slug="contact", channel_weight=0)
    response = anon_client.post(
        "/api/v1/forms/contact/submit/",
        {
            "email": "eve@evil.example",
            "stage": "customer",
            "score": 100,
            "fit_score": 100,
            "owner": sales_rep.pk,
            "owner_id": sales_rep.pk,
            "cycle": 9,
            "history": [{"to": "customer"}],
            "transitions": [{"to": "sql"}],
            "unsubscribed_at": None,
            "tags": ["vip"],
            "custom_fields": {"vip": True},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(email="eve@evil.example")
    assert lead.stage == "visitor" and lead.owner_id is None and lead.cycle == 1
    assert lead.score < 100 and lead.fit_score < 100
    assert list(StageTransition.objects.filter(lead=lead).values_list("to_stage", flat=True)) == ["visitor"]
    assert "vip" not in (lead.tags or [])


def test_lead_patch_cannot_set_stage_score_owner_or_history(marketer_client, sales_rep):
    lead = LeadFactory()
    for field, value in [
        ("stage", "customer"),
        ("score", 99),
        ("owner", sales_rep.pk),
        ("owner_id", sales_rep.pk),
        ("history", []),
        ("cycle", 5),
    ]:
        response = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {field: value}, format="json")
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["errors"]
    lead.refresh_from_db()
    assert lead.stage == "visitor" and lead.owner_id is None and lead.cycle == 1
    assert StageTransition.objects.filter(lead=lead).count() <= 1


# --- tracking links ---------------------------------------------------------------------------


@pytest.fixture
def sent_message():
    from nurturing.models import Message
    from nurturing.services import enrollments_create, process_due_steps

    sequence = make_sequence(
        steps=[
            {
                "kind": "email",
                "subject": "Hi",
                "body": '<p><a href="https://leadfunnel.example/pricing">Pricing</a></p>',
            }
        ]
    )
    lead = LeadFactory()
    enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    process_due_steps()
    return Message.objects.get(lead=lead)


def test_a_click_redirects_only_to_a_link_of_its_own_message(client, sent_message):
    from nurturing.tracking import tracking_token

    assert sent_message.links and sent_message.links[0] == "https://leadfunnel.example/pricing"
    good = tracking_token(sent_message.token, "c", 0)
    answer = client.get(f"/t/c/{good}/")
    assert answer.status_code == 302 and answer["Location"] == "https://leadfunnel.example/pricing"

    value, _, signature = good.rpartition(":")
    attempts = [
        f"{sent_message.token}.c.1:{signature}",  # another index under the same signature
        good.replace(".c.0", ".c.7"),  # tampered index
        tracking_token(sent_message.token, "c", 5),  # signed, but the message has no link 5
        tracking_token(sent_message.token, "o"),  # an open token used as a click
        tracking_token(sent_message.token, "u"),  # an unsubscribe token used as a click
        signing.Signer(salt="other").sign(f"{sent_message.token}.c.0"),  # signed for another purpose
        "https%3A%2F%2Fevil.example",
    ]
    for token in attempts:
        response = client.get(f"/t/c/{token}/")
        assert response.status_code == 404, token
        assert "Location" not in response


def test_unsubscribe_tokens_cannot_be_enumerated(client, sent_message):
    from nurturing.tracking import tracking_token

    lead = sent_message.lead
    guesses = [str(n) for n in range(1, 30)] + [
        f"{sent_message.token}.u",  # the right value without a signature
        f"{lead.pk}.u:abc",
        tracking_token(sent_message.token, "c", 0),  # a click token is not an unsubscribe token
        tracking_token("x" * len(sent_message.token), "u"),  # well signed, unknown message
    ]
    for guess in guesses:
        assert client.post(f"/t/u/{guess}/").status_code == 404, guess
    lead.refresh_from_db()
    assert lead.unsubscribed_at is None
    assert len(sent_message.token) >= 16  # random, not a sequence number
    good = tracking_token(sent_message.token, "u")
    assert client.post(f"/t/u/{good}/").status_code == 200
    lead.refresh_from_db()
    assert lead.unsubscribed_at is not None


# --- stored XSS -------------------------------------------------------------------------------


def test_script_payloads_in_lead_fields_render_escaped_on_every_dashboard_page(marketer, sales_rep):
    from leads.services import lead_change_stage

    lead = LeadFactory(
        first_name=XSS,
        last_name=XSS,
        title=XSS,
        company_name=XSS,
        custom_fields={XSS: XSS, "note": XSS},
    )
    lead_change_stage(lead=lead, to_stage="mql", cause="manual", owner=sales_rep, reason=XSS)
    FormFactory(slug="xss-form", name=XSS)
    make_sequence(
        name=XSS,
        steps=[{"kind": "email", "subject": XSS, "body": "<p>{{ lead.first_name }}</p>"}],
    )
    from leadfunnel.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="script"):  # email templates refuse script outright
        make_sequence(name="Bad", steps=[{"kind": "email", "subject": "x", "body": f"<p>{XSS}</p>"}])
    pages = {
        marketer: ["/", "/leads/", f"/leads/{lead.pk}/", "/forms/", "/sequences/", "/scoring/"],
        sales_rep: ["/queue/", "/pipeline/", f"/leads/{lead.pk}/"],
    }
    seen = 0
    for user, paths in pages.items():
        client = Client()
        client.force_login(user)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            html = response.content.decode()
            assert XSS not in html, path
            assert "<script>alert(" not in html, path
            seen += html.count(XSS_ESCAPED)
    assert seen >= 5  # the payload was on the pages, escaped


def test_a_lead_name_with_markup_is_escaped_inside_the_email_it_receives():
    from django.core import mail

    from nurturing.models import Message
    from nurturing.services import enrollments_create, process_due_steps

    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "<p>Hello {{ lead.first_name }}</p>"}])
    lead = LeadFactory(first_name=XSS)
    enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    process_due_steps()
    body = Message.objects.get(lead=lead).body
    assert XSS not in body and "&lt;script&gt;" in body
    html = mail.outbox[-1].alternatives[0][0] if mail.outbox[-1].alternatives else mail.outbox[-1].body
    assert XSS not in html


# --- CSRF -------------------------------------------------------------------------------------


def test_dashboard_forms_refuse_posts_without_a_csrf_token(marketer, sales_rep):
    lead = LeadFactory()
    posts = {
        marketer: [
            "/forms/new/",
            "/scoring/rules/new/",
            "/scoring/settings/",
            "/sequences/new/",
            "/leads/bulk/",
            "/sequences/enroll/",
            f"/sequences/enroll/{lead.pk}/",
        ],
        sales_rep: [f"/leads/{lead.pk}/accept/", f"/leads/{lead.pk}/reject/"],
    }
    sequence = make_sequence(name="Welcome", active=True)
    for user, paths in posts.items():
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        for path in paths:
            response = client.post(path, {"name": "x", "reason": "x", "ids": [lead.pk], "sequence": sequence.pk})
            assert response.status_code == 403, path
    assert Lead.objects.get(pk=lead.pk).stage == "visitor"
    assert not sequence.enrollments.exists()


def test_the_login_form_carries_a_csrf_token_and_refuses_a_post_without_it(marketer):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    assert client.post("/accounts/login/", {"username": "maya", "password": "pass-word-123"}).status_code == 403


# --- login lockout and rate limits -------------------------------------------------------------


def test_login_locks_out_after_repeated_failures_even_with_the_right_password(client, marketer, settings):
    settings.LOGIN_MAX_FAILURES = 5
    for _ in range(5):
        wrong = client.post("/accounts/login/", {"username": "maya", "password": "nope"})
        assert wrong.status_code == 200
    locked = client.post("/accounts/login/", {"username": "maya", "password": "pass-word-123"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The admin login and the token endpoint are locked too (same backend).
    admin_login = client.post("/admin/login/", {"username": "maya", "password": "pass-word-123"})
    assert admin_login.status_code == 200 and "_auth_user_id" not in client.session
    token = client.post(
        "/api/v1/auth/token/", {"username": "maya", "password": "pass-word-123"}, content_type="application/json"
    )
    assert token.status_code == 429 and token.json()["code"] == "locked_out" and token["Retry-After"]
    # Another address is not locked out.
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert other.post("/accounts/login/", {"username": "maya", "password": "pass-word-123"}).status_code == 302
    event = AuditEvent.objects.get(action="user.login_locked")
    assert event.object_id == str(marketer.pk) and event.changes["failures"] == 5


def test_a_successful_login_resets_the_failure_count(client, marketer, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        client.post("/accounts/login/", {"username": "maya", "password": "nope"})
    assert client.post("/accounts/login/", {"username": "maya", "password": "pass-word-123"}).status_code == 302
    client.logout()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "maya", "password": "nope"})
    assert client.post("/accounts/login/", {"username": "maya", "password": "pass-word-123"}).status_code == 302


def test_the_token_endpoint_answers_the_users_token_and_is_throttled(anon_client, marketer, settings):
    settings.TOKEN_RATE_LIMIT = "3/min"
    ok = anon_client.post("/api/v1/auth/token/", {"username": "maya", "password": "pass-word-123"}, format="json")
    assert ok.status_code == 200 and ok.json()["token"] == Token.objects.get(user=marketer).key
    bad = anon_client.post("/api/v1/auth/token/", {"username": "maya", "password": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["message"]
    anon_client.post("/api/v1/auth/token/", {"username": "maya", "password": "x"}, format="json")
    throttled = anon_client.post(
        "/api/v1/auth/token/", {"username": "maya", "password": "pass-word-123"}, format="json"
    )
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0


def test_public_intake_is_rate_limited_per_address(anon_client, settings):
    settings.INTAKE_RATE_LIMIT = "3/min"
    FormFactory(slug="contact")
    statuses = [
        anon_client.post("/api/v1/forms/contact/submit/", {"email": f"a{n}@acme.example"}, format="json").status_code
        for n in range(5)
    ]
    assert statuses == [201, 201, 201, 429, 429]
    assert FormSubmission.objects.count() == 3


# --- audit log --------------------------------------------------------------------------------


def test_changes_to_rules_settings_sequences_users_and_stages_are_recorded_with_their_author(
    marketer_client, marketer, admin_client_api, admin_user, sales_rep
):
    rule = marketer_client.post(
        "/api/v1/scoring/rules/",
        {
            "name": "Visited pricing",
            "dimension": "engagement",
            "source": "interaction",
            "interaction_type": "page_view",
            "points": 5,
        },
        format="json",
    )
    assert rule.status_code == 201, rule.content
    rule_id = rule.json()["id"]
    assert marketer_client.patch(f"/api/v1/scoring/rules/{rule_id}/", {"points": 7}, format="json").status_code == 200
    assert marketer_client.delete(f"/api/v1/scoring/rules/{rule_id}/").status_code == 204
    assert marketer_client.patch("/api/v1/scoring/settings/", {"mql_threshold": 61}, format="json").status_code == 200
    sequence = marketer_client.post(
        "/api/v1/sequences/",
        {"name": "Audit me", "steps": [{"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"}]},
        format="json",
    )
    assert sequence.status_code == 201, sequence.content
    rep = admin_client_api.patch(f"/api/v1/reps/{sales_rep.pk}/", {"is_away": True}, format="json")
    assert rep.status_code == 200, rep.content
    lead = LeadFactory()
    assert (
        marketer_client.post(f"/api/v1/leads/{lead.pk}/mark-mql/", {"reason": "Called us"}, format="json").status_code
        == 200
    )

    actions = dict(AuditEvent.objects.values_list("action", "actor_id"))
    for action in ("scoring.rule_created", "scoring.rule_updated", "scoring.settings_updated", "sequence.created"):
        assert actions.get(action) == marketer.pk, (action, actions)
    assert any(a.startswith("scoring.rule_") and "delet" in a for a in actions), actions
    assert any(actor == admin_user.pk for action, actor in actions.items() if action.startswith("rep")), actions
    transition = StageTransition.objects.get(lead=lead, to_stage="mql")
    assert transition.actor_id == marketer.pk and transition.reason == "Called us"


# --- secrets ----------------------------------------------------------------------------------


def test_no_secrets_are_committed():
    import subprocess

    from tests.conftest import ROOT

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert not [f for f in files if re.search(r"(^|/)\.env(\.|$)|\.pem$|\.key$|id_rsa", f)]
    pattern = re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----|sk_live_[0-9a-zA-Z]{10,}|AKIA[0-9A-Z]{16}|xox[bp]-[0-9A-Za-z-]{10,}"
    )
    for name in files:
        if not name.endswith((".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ".sh", ".html")):
            continue
        text = (ROOT / name).read_text(errors="replace") if (ROOT / name).exists() else ""
        assert not pattern.search(text), name
    settings_text = (ROOT / "leadfunnel" / "settings.py").read_text()
    assert 'SECRET_KEY = os.environ.get("SECRET_KEY"' in settings_text
    # The only key in the code is the development fallback, refused when DEBUG is off.
    assert "raise ImproperlyConfigured" in settings_text.split("SECRET_KEY = os.environ.get", 1)[1][:400]

"""The public form intake: POST /api/v1/forms/<slug>/submit/."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadfunnel.models import OutboxMessage
from leads.models import Company, FormSubmission, Interaction, Lead, StageTransition
from tests.factories import FormFactory, InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


def submit(client, slug, data, **extra):
    return client.post(f"/api/v1/forms/{slug}/submit/", data=json.dumps(data), content_type="application/json", **extra)


@pytest.fixture
def form(db):
    return FormFactory(slug="contact", name="Contact us", allowed_origins=["https://www.acme.example"])


def test_a_submission_creates_a_visitor_with_its_history_and_answers_the_submission_id(anon_client, form):
    response = submit(
        anon_client,
        "contact",
        {
            "email": "  Ada.Lovelace@Analytical.example ",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "title": "CTO",
            "company": "Analytical Engines",
            "company_size": "51-200",
            "consent": "yes",
            "utm_source": "newsletter",
            "page_url": "https://www.acme.example/pricing",
        },
        HTTP_USER_AGENT="Mozilla/5.0 test",
    )
    assert response.status_code == 201
    submission = FormSubmission.objects.get()
    assert response.json() == {"id": submission.pk}
    lead = Lead.objects.get()
    assert lead.email == "ada.lovelace@analytical.example"
    assert (lead.first_name, lead.last_name, lead.title) == ("Ada", "Lovelace", "CTO")
    assert lead.stage == "visitor" and lead.owner is None
    assert lead.consent and lead.consent_at is not None and lead.consent_source == "form:contact"
    assert lead.utm_source == "newsletter" and lead.source == "newsletter" and lead.first_form == form
    assert lead.first_page_url == "https://www.acme.example/pricing"
    assert lead.company.domain == "analytical.example" and lead.company.name == "Analytical Engines"
    assert submission.lead == lead and submission.user_agent == "Mozilla/5.0 test" and submission.ip == "127.0.0.1"
    assert submission.payload["email"] == "  Ada.Lovelace@Analytical.example "
    interaction = Interaction.objects.get()
    assert interaction.type == "form_submit" and interaction.lead == lead
    assert interaction.properties["form"] == "contact" and interaction.properties["submission_id"] == submission.pk
    entry = StageTransition.objects.get()
    assert (entry.from_stage, entry.to_stage, entry.cause) == ("", "visitor", "api")
    topics = sorted(OutboxMessage.objects.values_list("topic", flat=True))
    assert topics == ["interactions.recorded", "lead.created", "lead.form_submitted"]
    created = OutboxMessage.objects.get(topic="lead.created").payload
    assert created == {"lead_id": lead.pk, "source": "newsletter", "form_slug": "contact"}


def test_form_encoded_submissions_are_accepted(anon_client, form):
    response = anon_client.post(
        "/api/v1/forms/contact/submit/",
        data="email=grace%40navy.example&first_name=Grace&interests=cobol&interests=compilers",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert lead.first_name == "Grace"
    assert lead.custom_fields == {"interests": ["cobol", "compilers"]}


def test_the_same_email_in_another_letter_case_updates_the_same_lead(anon_client, form):
    assert submit(anon_client, "contact", {"email": "joan@clarke.example", "first_name": "Joan"}).status_code == 201
    response = submit(anon_client, "contact", {"email": "JOAN@Clarke.EXAMPLE", "first_name": "J.", "title": "Analyst"})
    assert response.status_code == 201
    lead = Lead.objects.get()
    # Only blank fields are filled: the first name stays, the missing title is added.
    assert (lead.first_name, lead.title) == ("Joan", "Analyst")
    assert FormSubmission.objects.filter(lead=lead).count() == 2
    assert Interaction.objects.filter(lead=lead, type="form_submit").count() == 2
    assert StageTransition.objects.filter(lead=lead).count() == 1
    assert OutboxMessage.objects.filter(topic="lead.created").count() == 1
    assert OutboxMessage.objects.filter(topic="lead.form_submitted").count() == 2


def test_a_form_that_overwrites_the_profile_replaces_known_fields(anon_client):
    FormFactory(slug="event", overwrite_profile=True)
    LeadFactory(email="alan@turing.example", first_name="Alan", title="Student")
    assert submit(anon_client, "event", {"email": "alan@turing.example", "title": "Researcher"}).status_code == 201
    assert Lead.objects.get().title == "Researcher"


def test_stage_score_and_owner_are_never_taken_from_the_caller(anon_client, form, sales_rep):
    response = submit(
        anon_client,
        "contact",
        {"email": "eve@attacker.example", "stage": "customer", "score": 100, "owner": sales_rep.pk, "cycle": 9},
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert (lead.stage, lead.owner_id, lead.cycle) == ("visitor", None, 1)
    # The score is whatever the scoring rules give a plain form submission, never the caller's 100.
    twin = submit(anon_client, "contact", {"email": "twin@attacker.example"})
    assert twin.status_code == 201
    assert lead.score == Lead.objects.get(email="twin@attacker.example").score < 100
    assert lead.custom_fields == {}


def test_unknown_fields_are_kept_as_custom_data_within_limits(anon_client, form):
    response = submit(anon_client, "contact", {"email": "kim@acme.example", "team_size": 12, "message": "Hi"})
    assert response.status_code == 201
    assert Lead.objects.get().custom_fields == {"team_size": 12, "message": "Hi"}

    too_many = {"email": "lee@acme.example", **{f"q{i}": "x" for i in range(51)}}
    response = submit(anon_client, "contact", too_many)
    assert response.status_code == 400
    assert "custom_fields" in response.json()["errors"]
    too_long = submit(anon_client, "contact", {"email": "lee@acme.example", "essay": "x" * 2001})
    assert too_long.status_code == 400 and "essay" in too_long.json()["message"]
    assert not Lead.objects.filter(email="lee@acme.example").exists()


def test_a_business_domain_links_a_company_and_free_mail_does_not(anon_client, form):
    submit(anon_client, "contact", {"email": "a@globex.example"})
    submit(anon_client, "contact", {"email": "b@GLOBEX.example", "company": "Globex Corp"})
    submit(anon_client, "contact", {"email": "someone@gmail.com", "company": "Freelance"})
    assert Company.objects.count() == 1
    globex = Company.objects.get()
    assert globex.domain == "globex.example"
    assert set(globex.leads.values_list("email", flat=True)) == {"a@globex.example", "b@globex.example"}
    freelancer = Lead.objects.get(email="someone@gmail.com")
    assert freelancer.company is None and freelancer.company_name == "Freelance"


def test_an_idempotent_retry_answers_the_same_id_and_stores_one_submission(anon_client, form):
    first = submit(anon_client, "contact", {"email": "retry@acme.example"}, HTTP_IDEMPOTENCY_KEY="abc-123")
    again = submit(anon_client, "contact", {"email": "retry@acme.example"}, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert FormSubmission.objects.count() == 1
    assert Interaction.objects.count() == 1
    other = submit(anon_client, "contact", {"email": "retry@acme.example"}, HTTP_IDEMPOTENCY_KEY="abc-124")
    assert other.json()["id"] != first.json()["id"]
    assert FormSubmission.objects.count() == 2


def test_a_filled_honeypot_answers_201_but_stores_no_lead(anon_client, form, caplog):
    response = submit(anon_client, "contact", {"email": "bot@spam.example", "website": "http://spam.example"})
    assert response.status_code == 201
    submission = FormSubmission.objects.get()
    assert response.json() == {"id": submission.pk}
    assert submission.is_spam and submission.lead is None
    assert not Lead.objects.exists() and not Interaction.objects.exists() and not OutboxMessage.objects.exists()
    assert "honeypot" in caplog.text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "needle"),
    [
        ('{"email": "x@y.example",', "application/json", 400, "Malformed JSON"),
        ("[1, 2]", "application/json", 400, "must be an object"),
        ('{"first_name": "No Email"}', "application/json", 400, "email"),
        ('{"email": "not-an-email"}', "application/json", 400, "valid email"),
        ("email=x@y.example", "text/plain", 415, "Unsupported content type"),
        ("<lead/>", "application/xml", 415, "Unsupported content type"),
        ('{"email": "x@y.example", "first_name": {"a": 1}}', "application/json", 400, "first_name"),
        ('{"email": "x@y.example", "first_name": "' + "a" * 101 + '"}', "application/json", 400, "first_name"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(anon_client, form, body, content_type, status, needle):
    response = anon_client.post("/api/v1/forms/contact/submit/", data=body, content_type=content_type)
    assert response.status_code == status
    assert needle in response.json()["message"]
    assert not Lead.objects.exists() and not FormSubmission.objects.exists()


def test_a_10_mb_body_is_refused_with_413(anon_client, form):
    body = json.dumps({"email": "big@acme.example", "essay": "x" * (10 * 1024 * 1024)})
    response = anon_client.post("/api/v1/forms/contact/submit/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "too large" in response.json()["message"]
    assert not Lead.objects.exists()


def test_unknown_and_inactive_forms_are_a_json_404(anon_client):
    FormFactory(slug="old", active=False)
    for slug in ("nope", "old"):
        response = submit(anon_client, slug, {"email": "a@b.example"})
        assert response.status_code == 404
        assert "No active form" in response.json()["message"]
    assert not Lead.objects.exists()


@pytest.mark.parametrize(
    ("first", "last"),
    [("สมชาย", "ใจดี"), ("فاطمة", "الزهراء"), ("Çağla", "Yıldız"), ("İsmail", "Işık")],
)
def test_thai_arabic_and_turkish_names_are_stored_and_returned_intact(anon_client, marketer_client, form, first, last):
    assert (
        submit(
            anon_client, "contact", {"email": "intl@acme.example", "first_name": first, "last_name": last}
        ).status_code
        == 201
    )
    lead = Lead.objects.get()
    assert (lead.first_name, lead.last_name) == (first, last)
    shown = marketer_client.get(f"/api/v1/leads/{lead.pk}/").json()
    assert (shown["first_name"], shown["last_name"]) == (first, last)


def test_nul_characters_are_refused_naming_the_field_and_store_nothing(anon_client, form):
    response = submit(anon_client, "contact", {"email": "nul@acme.example", "first_name": "A\u0000da"})
    assert response.status_code == 400
    assert "first_name" in response.json()["errors"]
    assert not Lead.objects.exists() and not FormSubmission.objects.exists()


def test_cors_preflight_allows_only_the_forms_origins(anon_client, form):
    allowed = anon_client.options("/api/v1/forms/contact/submit/", HTTP_ORIGIN="https://www.acme.example")
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == "https://www.acme.example"
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in allowed["Access-Control-Allow-Headers"]
    refused = anon_client.options("/api/v1/forms/contact/submit/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused
    post = submit(anon_client, "contact", {"email": "c@acme.example"}, HTTP_ORIGIN="https://www.acme.example")
    assert post["Access-Control-Allow-Origin"] == "https://www.acme.example"
    assert anon_client.options("/api/v1/forms/nope/submit/", HTTP_ORIGIN="https://www.acme.example").status_code == 404


def test_the_intake_is_throttled_per_ip_with_retry_after(anon_client, form, settings):
    settings.INTAKE_RATE_LIMIT = "2/min"
    for i in range(2):
        assert submit(anon_client, "contact", {"email": f"t{i}@acme.example"}).status_code == 201
    response = submit(anon_client, "contact", {"email": "t3@acme.example"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["status"] == 429
    # Another address has its own budget; "off" disables the limit.
    assert submit(anon_client, "contact", {"email": "t4@acme.example"}, REMOTE_ADDR="10.0.0.9").status_code == 201
    settings.INTAKE_RATE_LIMIT = "off"
    assert submit(anon_client, "contact", {"email": "t5@acme.example"}).status_code == 201
    assert Lead.objects.count() == 4


def _count_queries(callable_) -> int:
    with CaptureQueriesContext(connection) as ctx:
        callable_()
    return len(ctx.captured_queries)


def test_the_intake_query_count_does_not_grow_with_the_leads_history(anon_client, form, django_assert_num_queries):
    fresh = LeadFactory(email="fresh@acme.example", company=None)
    busy = LeadFactory(email="busy@acme.example", company=None)
    InteractionFactory.create_batch(50, lead=busy)
    submit(anon_client, "contact", {"email": "warmup@acme.example"})  # the company exists from now on

    baseline = _count_queries(lambda: submit(anon_client, "contact", {"email": fresh.email, "title": "CEO"}))
    with django_assert_num_queries(baseline):
        assert submit(anon_client, "contact", {"email": busy.email, "title": "CEO"}).status_code == 201


@pytest.mark.postgres  # pins PostgreSQL's statements (upsert, unnest); SQLite takes a few more
def test_the_intake_itself_makes_a_pinned_number_of_queries(anon_client, form, django_assert_num_queries, monkeypatch):
    """Scoring's own queries are its business (tested there); these are the intake's."""
    from leads.services import qualification
    from scoring.services import ScoreOutcome

    monkeypatch.setattr(qualification, "score_leads", lambda **kw: ScoreOutcome())
    busy = LeadFactory(email="busy@acme.example", company=None)
    InteractionFactory.create_batch(50, lead=busy)
    submit(anon_client, "contact", {"email": "warmup@acme.example"})
    # 1 form, 2 savepoint (the transaction), 3 is the email a merged lead's alias, 4 upsert (INSERT … ON
    # CONFLICT … RETURNING, finds the company too), 5 fill blank profile fields, 6 submission + form_submit
    # interaction (one statement), 7 outbox (one INSERT), 8 release.
    with django_assert_num_queries(8):
        assert submit(anon_client, "contact", {"email": busy.email, "title": "CEO"}).status_code == 201
    # A brand-new lead: nothing to fill in; entering the funnel writes its first history line (4 instead of the
    # profile fill), and its lead.created message rides on the one outbox INSERT.
    with django_assert_num_queries(8):
        assert submit(anon_client, "contact", {"email": "new@acme.example", "title": "CEO"}).status_code == 201


def test_a_capitalised_email_field_name_is_understood(anon_client, form):
    response = anon_client.post(
        "/api/v1/forms/contact/submit/",
        data="Email=Kai%40Acme.example&First_Name=Kai",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, lead.custom_fields) == ("kai@acme.example", "Kai", {})
    assert "Origin" in response["Vary"]

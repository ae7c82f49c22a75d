import re

import pytest

from leads.models import Form, FormSubmission
from nurturing.models import Enrollment, Sequence, Step
from scoring.models import RecomputeJob, ScoringRule, ScoringSettings
from tests.factories import FormFactory, LeadFactory

RULE = {
    "name": "Visited the careers page",
    "dimension": "engagement",
    "source": "interaction",
    "interaction_type": "page_view",
    "property": "url",
    "operator": "contains",
    "value": "/careers",
    "points": "-5",
    "active": "on",
}


@pytest.mark.django_db
def test_the_scoring_page_lists_fit_and_engagement_rules(marketer_web):
    body = marketer_web.get("/scoring/").content.decode()
    fit = body[body.index('id="fit-rules"') : body.index('id="engagement-rules"')]
    assert "Senior title" in fit and "Requested a demo" not in fit
    assert "Requested a demo" in body[body.index('id="engagement-rules"') :]


@pytest.mark.django_db
def test_creating_a_rule_stores_it_and_starts_a_recompute(marketer_web, marketer):
    response = marketer_web.post("/scoring/rules/new/", RULE)
    assert response.status_code == 302
    rule = ScoringRule.objects.get(name="Visited the careers page")
    assert (rule.points, rule.value, rule.property, rule.created_by) == (-5, "/careers", "url", marketer)
    job = RecomputeJob.objects.order_by("-id").first()
    assert job is not None and "created" in job.reason


@pytest.mark.django_db
def test_an_invalid_rule_shows_the_apis_message_next_to_the_field(marketer_web):
    before = ScoringRule.objects.count()
    data = {**RULE, "source": "profile", "field": "", "operator": "gte", "value": "x"}
    response = marketer_web.post("/scoring/rules/new/", data)
    assert response.status_code == 200
    assert "A profile rule needs a field." in response.content.decode()
    assert ScoringRule.objects.count() == before


@pytest.mark.django_db
def test_editing_a_rule_changes_its_points(marketer_web):
    rule = ScoringRule.objects.create(
        name="Pricing", dimension="engagement", source="interaction", interaction_type="page_view", points=5
    )
    page = marketer_web.get(f"/scoring/rules/{rule.pk}/").content.decode()
    assert 'value="Pricing"' in page
    data = {**RULE, "name": "Pricing", "property": "", "operator": "", "value": "", "points": "15"}
    assert marketer_web.post(f"/scoring/rules/{rule.pk}/", data).status_code == 302
    rule.refresh_from_db()
    assert rule.points == 15


@pytest.mark.django_db
def test_saving_settings_updates_threshold_sla_and_required_fields(marketer_web):
    data = {
        "mql_threshold": "55",
        "sales_ready_threshold": "80",
        "sla_hours": "8",
        "required_profile_fields": ["first_name", "title"],
        "fit_weight": "40",
        "engagement_weight": "60",
    }
    assert marketer_web.post("/scoring/settings/", data).status_code == 302
    row = ScoringSettings.objects.get()
    assert (row.mql_threshold, row.sla_hours, row.required_profile_fields) == (55, 8, ["first_name", "title"])


@pytest.mark.django_db
def test_settings_the_service_refuses_are_explained(marketer_web):
    data = {
        "mql_threshold": "90",
        "sales_ready_threshold": "50",
        "sla_hours": "8",
        "fit_weight": "50",
        "engagement_weight": "50",
    }
    response = marketer_web.post("/scoring/settings/", data)
    assert response.status_code == 400
    assert "Must be at least the MQL threshold." in response.content.decode()
    assert ScoringSettings.objects.get().mql_threshold != 90


@pytest.mark.django_db
def test_the_recompute_status_polls_while_running_and_stops_when_done(marketer_web):
    LeadFactory()
    job = RecomputeJob.objects.create(status="running", total=4, done=1, reason="rule 1 changed")
    body = marketer_web.get("/scoring/recompute/status/").content.decode()
    assert 'hx-trigger="every 1s"' in body and 'aria-valuenow="25"' in body
    RecomputeJob.objects.filter(pk=job.pk).update(status="done", done=4)
    body = marketer_web.get("/scoring/recompute/status/").content.decode()
    assert "every 1s" not in body and "Recompute finished" in body


STEPS = {
    "step_kind": ["email", "wait", "email"],
    "step_subject": ["Welcome {{ lead.first_name }}", "", "Ready for a demo?"],
    "step_body": ["<p>Hi {{ lead.first_name }}, here is our guide.</p>", "", "<p>Book a slot</p>"],
    "step_amount": ["", "3", ""],
    "step_unit": ["days", "days", "days"],
    "step_condition": ["", "", ""],
    "step_goto": ["", "", ""],
    "step_else_goto": ["", "", ""],
    "step_action": ["set_stage", "set_stage", "set_stage"],
    "step_params": ["", "", ""],
}
SEQUENCE = {
    "name": "Welcome",
    "active": "on",
    "stop_on_handoff": "on",
    "reenroll": "never",
    "enroll_kind": "manual",
    **STEPS,
}


@pytest.mark.django_db
def test_creating_a_sequence_in_the_editor_stores_its_ordered_steps(marketer_web):
    response = marketer_web.post("/sequences/new/", SEQUENCE)
    assert response.status_code == 302
    sequence = Sequence.objects.get(name="Welcome")
    steps = list(Step.objects.filter(sequence=sequence).order_by("position").values_list("kind", "config"))
    assert [kind for kind, _ in steps] == ["email", "wait", "email"]
    assert steps[1][1] == {"days": 3} and steps[2][1]["subject"] == "Ready for a demo?"


@pytest.mark.django_db
def test_a_broken_step_is_reported_on_that_step_and_nothing_is_saved(marketer_web):
    data = {**SEQUENCE, "step_amount": ["", "-1", ""], "step_subject": ["", "", "ok"]}
    response = marketer_web.post("/sequences/new/", data)
    body = response.content.decode()
    assert response.status_code == 400
    assert "Step 1: An email step needs a subject." in body
    assert not Sequence.objects.exists()


@pytest.mark.django_db
def test_the_sequence_pages_show_stats_enrolments_and_a_preview_for_a_sample_lead(marketer_web):
    marketer_web.post("/sequences/new/", SEQUENCE)
    sequence = Sequence.objects.get()
    lead = LeadFactory(first_name="<b>Zoë</b>", email="zoe@acme.example")
    Enrollment.objects.create(sequence=sequence, lead=lead, source="manual")
    listing = marketer_web.get("/sequences/").content.decode()
    assert "Welcome" in listing and re.search(r'<td class="num">1</td>\s*<td class="num">1</td>', listing)
    detail = marketer_web.get(f"/sequences/{sequence.pk}/").content.decode()
    assert "zoe@acme.example" in detail and "Welcome {{ lead.first_name }}" in detail
    preview = marketer_web.get(f"/sequences/{sequence.pk}/preview/?position=1&lead=zoe@acme.example").content.decode()
    # The merge field is filled in for the sample lead, and its markup stays text.
    assert "Welcome &lt;b&gt;Zoë&lt;/b&gt;" in preview or "Welcome &amp;lt;b&amp;gt;Zoë" in preview
    assert "<b>Zoë</b>" not in preview
    missing = marketer_web.get(f"/sequences/{sequence.pk}/preview/?lead=nobody@x.example").content.decode()
    assert "No lead with the email nobody@x.example." in missing


@pytest.mark.django_db
def test_editing_a_sequence_starts_from_its_current_steps(marketer_web):
    marketer_web.post("/sequences/new/", SEQUENCE)
    sequence = Sequence.objects.get()
    page = marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    assert page.count('class="step-row"') == 3 + 1  # three steps and the blank template row
    assert 'value="Ready for a demo?"' in page


@pytest.mark.django_db
def test_creating_a_form_shows_its_snippet_posting_to_the_public_endpoint(marketer_web, marketer):
    data = {
        "name": "Contact us",
        "slug": "contact-us",
        "kind": "contact",
        "channel": "inbound",
        "channel_weight": "10",
        "success_message": "Thanks!",
        "allowed_origins_text": "https://www.example.com\n",
    }
    response = marketer_web.post("/forms/new/", data)
    assert response.status_code == 302 and response["Location"] == "/forms/contact-us/"
    form = Form.objects.get(slug="contact-us")
    assert form.allowed_origins == ["https://www.example.com"] and form.created_by == marketer
    page = marketer_web.get("/forms/contact-us/").content.decode()
    assert "/api/v1/forms/contact-us/submit/" in page and "fetch(" in page


@pytest.mark.django_db
def test_a_form_with_a_bad_origin_is_not_created(marketer_web):
    data = {
        "name": "X",
        "slug": "x",
        "kind": "contact",
        "channel": "inbound",
        "channel_weight": "0",
        "allowed_origins_text": "example.com",
    }
    response = marketer_web.post("/forms/new/", data)
    assert "Origins start with http:// or https://" in response.content.decode()
    taken = {**data, "slug": "contact", "allowed_origins_text": ""}
    FormFactory(slug="contact")
    assert "already exists" in marketer_web.post("/forms/new/", taken).content.decode()
    assert not Form.objects.filter(slug="x").exists()


@pytest.mark.django_db
def test_the_forms_list_counts_submissions_without_spam(marketer_web):
    form = FormFactory(name="Demo request")
    for _ in range(3):
        FormSubmission.objects.create(form=form, payload={})
    FormSubmission.objects.create(form=form, payload={}, is_spam=True)
    body = marketer_web.get("/forms/").content.decode()
    row = body[body.index("Demo request") :]
    assert re.search(r">3</a></td>", row) and re.search(r'<td class="num hide-sm">1</td>\s*<td>', row)

"""Enrolling leads in a sequence from the leads pages: the lead page's "Sequences" card and the
list's bulk bar. Both are the nurturing app's (a template tag renders them, its views take the posts)."""

import re

import pytest
from django.utils import timezone

from leads.models import Lead
from nurturing.models import Enrollment
from tests.dashboard.conftest import walk
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- the lead page's Sequences card ------------------------------------------------------------


@pytest.mark.django_db
def test_the_lead_page_lists_the_leads_enrolments_and_offers_marketers_the_active_sequences(marketer_web):
    lead = LeadFactory()
    welcome = make_sequence(name="Welcome", active=True)
    make_sequence(name="Dormant", active=False)
    Enrollment.objects.create(sequence=welcome, lead=lead, source="manual", current_step=2)
    body = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    card = body[body.index('id="lead-sequences"') :]
    assert f'<a href="/sequences/{welcome.pk}/">Welcome</a> <span class="badge">active</span>' in card
    assert "step 2" in card
    form = card[card.index('id="enroll-form"') :]
    assert f'action="/sequences/enroll/{lead.pk}/"' in card
    assert 'name="csrfmiddlewaretoken"' in form
    picker = form[form.index('id="enroll-seq"') : form.index("</select>")]
    assert f'<option value="{welcome.pk}">Welcome</option>' in picker and "Dormant" not in picker


@pytest.mark.django_db
def test_a_rep_sees_the_leads_enrolments_but_no_enrol_form(rep_web, sales_rep):
    lead = LeadFactory(owner=sales_rep)
    walk(lead, ["mql"], start=timezone.now())
    Enrollment.objects.create(sequence=make_sequence(name="Welcome"), lead=lead, source="manual")
    body = rep_web.get(f"/leads/{lead.pk}/").content.decode()
    assert "Welcome</a>" in body[body.index('id="lead-sequences"') :]
    assert "/sequences/enroll/" not in body and 'id="enroll-seq"' not in body


@pytest.mark.django_db
def test_a_lead_in_no_sequence_says_so(marketer_web):
    lead = LeadFactory()
    body = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    assert "Not enrolled in any sequence." in body[body.index('id="lead-sequences"') :]


@pytest.mark.django_db
def test_a_marketer_enrols_a_lead_from_its_page(marketer_web, marketer):
    lead = LeadFactory()
    sequence = make_sequence(name="Welcome", active=True)
    response = marketer_web.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk})
    assert response.status_code == 302 and response["Location"] == f"/leads/{lead.pk}/"
    enrollment = Enrollment.objects.get()
    assert (enrollment.lead_id, enrollment.sequence_id, enrollment.source) == (lead.pk, sequence.pk, "manual")
    assert enrollment.enrolled_by == marketer and enrollment.status == "active"
    page = marketer_web.get(response["Location"])
    assert _messages(page) == ["Enrolled in the sequence."]
    assert "Welcome</a>" in page.content.decode()


@pytest.mark.django_db
def test_enrolling_a_lead_again_says_why_not_and_adds_nothing(marketer_web):
    lead = LeadFactory()
    sequence = make_sequence(active=True)
    first = marketer_web.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk}, follow=True)
    assert _messages(first) == ["Enrolled in the sequence."]
    response = marketer_web.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk}, follow=True)
    assert _messages(response) == ["This lead is already in this sequence."]
    assert response.redirect_chain == [(f"/leads/{lead.pk}/", 302)]
    assert Enrollment.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sequence", "message"),
    [("", "Sequence: Pick a sequence."), ("999999", "That sequence or lead no longer exists.")],
)
def test_enrolling_a_lead_needs_an_existing_sequence(marketer_web, sequence, message):
    lead = LeadFactory()
    response = marketer_web.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence}, follow=True)
    assert _messages(response) == [message]
    assert not Enrollment.objects.exists()


@pytest.mark.django_db
def test_enrolling_an_unknown_lead_changes_nothing(marketer_web):
    sequence = make_sequence(active=True)
    response = marketer_web.post("/sequences/enroll/999999/", {"sequence": sequence.pk})
    assert response.status_code == 302 and response["Location"] == "/leads/999999/"
    assert not Enrollment.objects.exists()


@pytest.mark.django_db
def test_enrolling_a_lead_goes_back_to_a_local_next_url_only(marketer_web):
    lead, other = LeadFactory(), LeadFactory()
    sequence = make_sequence(active=True)
    local = marketer_web.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk, "next": "/leads/?stage=mql"})
    assert local["Location"] == "/leads/?stage=mql"
    away = marketer_web.post(
        f"/sequences/enroll/{other.pk}/", {"sequence": sequence.pk, "next": "https://evil.example/"}
    )
    assert away["Location"] == f"/leads/{other.pk}/"


@pytest.mark.django_db
def test_only_marketers_and_admins_enrol_a_lead(rep_web, sales_rep, client, admin_user, browser_for):
    lead = LeadFactory(owner=sales_rep)
    sequence = make_sequence(active=True)
    assert rep_web.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk}).status_code == 403
    anonymous = client.post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
    assert not Enrollment.objects.exists()
    admin = browser_for(admin_user).post(f"/sequences/enroll/{lead.pk}/", {"sequence": sequence.pk})
    assert admin.status_code == 302 and Enrollment.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db
def test_enrolling_is_a_post(marketer_web):
    lead = LeadFactory()
    assert marketer_web.get(f"/sequences/enroll/{lead.pk}/").status_code == 405
    assert marketer_web.get("/sequences/enroll/").status_code == 405


@pytest.mark.django_db
def test_the_leads_app_no_longer_takes_enrolments(marketer_web):
    lead = LeadFactory()
    sequence = make_sequence(active=True)
    assert marketer_web.post(f"/leads/{lead.pk}/enroll/", {"sequence": sequence.pk}).status_code == 404
    refused = marketer_web.post(
        "/leads/bulk/", {"action": "enroll", "ids": [lead.pk], "sequence": sequence.pk}, follow=True
    )
    assert _messages(refused) == [
        "Pick “Mark as MQL”, “Disqualify” or a list action; to enrol the leads, pick a sequence and press Enrol."
    ]
    assert not Enrollment.objects.exists()


# --- the leads list's bulk bar ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_bulk_bar_offers_the_active_sequences_and_posts_enrolments_to_the_sequences_app(marketer_web):
    LeadFactory()
    welcome = make_sequence(name="Welcome", active=True)
    make_sequence(name="Dormant", active=False)
    body = marketer_web.get("/leads/").content.decode()
    bar = body[body.index('class="bulkbar"') : body.index('id="leads-table"')]
    assert '<option value="enroll">Enrol in sequence…</option>' in bar
    picker = bar[bar.index('id="bulk-sequence"') : bar.index("</select>", bar.index('id="bulk-sequence"'))]
    assert f'<option value="{welcome.pk}">Welcome</option>' in picker and "Dormant" not in picker
    assert re.search(r'<button[^>]*id="bulk-enroll"[^>]*formaction="/sequences/enroll/"', bar)
    assert re.search(r'<button[^>]*id="bulk-apply"', bar)
    assert 'action="/leads/bulk/" id="bulk-form"' in body


@pytest.mark.django_db
def test_a_rep_has_no_bulk_bar(rep_web):
    make_sequence(active=True)
    body = rep_web.get("/leads/").content.decode()
    assert 'class="bulkbar"' not in body and "/sequences/enroll/" not in body


@pytest.mark.django_db
def test_bulk_enrolment_enrols_each_selected_lead_and_reports_failures(marketer_web, marketer):
    a, b = LeadFactory(), LeadFactory()
    gone = LeadFactory()
    walk(gone, ["disqualified"], start=timezone.now())
    sequence = make_sequence(active=True)
    response = marketer_web.post(
        "/sequences/enroll/",
        {"action": "enroll", "ids": [a.pk, b.pk, gone.pk], "sequence": sequence.pk, "next": "/leads/?sort=-score"},
    )
    assert response.status_code == 302 and response["Location"] == "/leads/?sort=-score"
    assert set(Enrollment.objects.values_list("lead_id", flat=True)) == {a.pk, b.pk}
    assert set(Enrollment.objects.values_list("enrolled_by", flat=True)) == {marketer.pk}
    assert _messages(marketer_web.get(response["Location"])) == [
        "Enrol in sequence: done for 2 lead(s).",
        f"1 lead(s) not changed — #{gone.pk}: This lead is disqualified and is not nurtured.",
    ]
    assert Lead.objects.get(pk=gone.pk).stage == "disqualified"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sequence": "SEQUENCE"}, "Select some leads."),
        ({"ids": ["LEAD"]}, "Pick a sequence to enrol the leads in."),
        ({}, "Select some leads. Pick a sequence to enrol the leads in."),
        ({"ids": ["LEAD"] * 501, "sequence": "SEQUENCE"}, "Select at most 500 leads at a time."),
    ],
)
def test_bulk_enrolment_explains_what_is_missing_and_changes_nothing(marketer_web, data, message):
    lead = LeadFactory()
    sequence = make_sequence(active=True)
    values = {"LEAD": lead.pk, "SEQUENCE": sequence.pk}
    data = {k: [values[v] for v in vs] if isinstance(vs, list) else values[vs] for k, vs in data.items()}
    response = marketer_web.post("/sequences/enroll/", data, follow=True)
    assert response.redirect_chain == [("/leads/", 302)]
    assert _messages(response) == [message]
    assert not Enrollment.objects.filter(lead=lead).exists()


@pytest.mark.django_db
def test_bulk_enrolment_into_a_missing_sequence_reports_every_lead(marketer_web):
    a, b = LeadFactory(), LeadFactory()
    response = marketer_web.post("/sequences/enroll/", {"ids": [a.pk, b.pk], "sequence": 999999}, follow=True)
    assert _messages(response) == [
        f"2 lead(s) not changed — #{a.pk}: That sequence or lead no longer exists.; "
        f"#{b.pk}: That sequence or lead no longer exists."
    ]
    assert not Enrollment.objects.exists()


@pytest.mark.django_db
def test_bulk_enrolment_is_for_marketers_only(rep_web, client):
    lead = LeadFactory()
    sequence = make_sequence(active=True)
    assert rep_web.post("/sequences/enroll/", {"ids": [lead.pk], "sequence": sequence.pk}).status_code == 403
    anonymous = client.post("/sequences/enroll/", {"ids": [lead.pk], "sequence": sequence.pk})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
    assert not Enrollment.objects.exists()

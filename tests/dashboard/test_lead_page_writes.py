"""The lead page: edit the profile, log a note / call / meeting, the score over time and the
predictive factors behind the probability."""

import re
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from leads import services
from leads.models import Interaction, Lead
from scoring.models import ScoreContribution
from scoring.services.configuration import rule_create
from tests.dashboard.predictive_model import activate_model
from tests.factories import LeadFactory
from tests.factories import sales_rep as make_rep

PROFILE = {
    "profile-first_name": "Dana",
    "profile-last_name": "Scully",
    "profile-title": "VP Engineering",
    "profile-email": "dana@fbi.example",
    "profile-phone": "+1 555 0100",
    "profile-company": "FBI",
    "profile-company_size": "1000+",
    "profile-industry": "Government",
    "profile-country": "US",
    "profile-city": "Washington",
    "profile-time_zone": "America/New_York",
    "profile-linkedin": "",
    "profile-twitter": "",
}


@pytest.mark.django_db
def test_a_marketer_edits_the_profile_and_sees_it_saved(marketer_web):
    lead = LeadFactory(first_name="D", title="")
    response = marketer_web.post(f"/leads/{lead.pk}/profile/", PROFILE)
    assert response.status_code == 302 and response["Location"] == f"/leads/{lead.pk}/"
    lead.refresh_from_db()
    assert (lead.first_name, lead.title, lead.email, lead.company_name, lead.time_zone) == (
        "Dana",
        "VP Engineering",
        "dana@fbi.example",
        "FBI",
        "America/New_York",
    )
    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    assert "Profile saved." in page and 'id="lead-name">Dana Scully<' in page


@pytest.mark.django_db
def test_a_refused_profile_shows_the_message_next_to_the_field_and_changes_nothing(marketer_web):
    lead = LeadFactory(first_name="Fox", email="fox@fbi.example")
    LeadFactory(email="taken@fbi.example")
    bad = marketer_web.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-email": "not an email"})
    assert bad.status_code == 400
    body = bad.content.decode()
    errors = body[body.index('id="id_profile-email-errors"') :][:300]
    assert "email" in errors.lower()
    taken = marketer_web.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-email": "taken@fbi.example"})
    assert taken.status_code == 400
    assert "A lead with this email already exists: merge the two leads instead." in taken.content.decode()
    too_long = marketer_web.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-time_zone": "x" * 65})
    assert too_long.status_code == 400
    lead.refresh_from_db()
    assert (lead.first_name, lead.email) == ("Fox", "fox@fbi.example")


@pytest.mark.django_db
def test_the_owning_rep_edits_the_profile_and_another_rep_may_not(browser_for, sales_rep, other_rep):
    lead = LeadFactory(owner=sales_rep, stage="sal", first_name="Walter")
    mine, theirs = browser_for(sales_rep), browser_for(other_rep)
    assert 'id="profile-form"' in mine.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="profile-form"' not in theirs.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="activity-form"' not in theirs.get(f"/leads/{lead.pk}/").content.decode()

    refused = theirs.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-first_name": "Mallory"})
    assert refused.status_code == 403
    assert (
        theirs.post(f"/leads/{lead.pk}/activity/", {"activity-kind": "note", "activity-text": "x"}).status_code == 403
    )
    lead.refresh_from_db()
    assert lead.first_name == "Walter" and not Interaction.objects.filter(lead=lead).exists()

    assert mine.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-first_name": "Walt"}).status_code == 302
    lead.refresh_from_db()
    assert lead.first_name == "Walt"


@pytest.mark.django_db
def test_a_profile_edit_rescores_the_lead(marketer_web):
    lead = LeadFactory(title="", email="someone@bigcorp.example")
    before = lead.fit_score
    assert marketer_web.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-email": lead.email}).status_code == 302
    lead.refresh_from_db()
    assert lead.fit_score > before  # "VP" title earns the default fit rule's points


@pytest.mark.django_db
def test_a_note_a_call_and_a_meeting_are_logged_and_shown_in_the_timeline(browser_for, sales_rep):
    lead = LeadFactory(owner=sales_rep, stage="sal")
    web = browser_for(sales_rep)
    posts = [
        {"activity-kind": "note", "activity-text": "Prefers email. Budget in Q3."},
        {"activity-kind": "call", "activity-outcome": "left_voicemail", "activity-duration_minutes": "2"},
        {"activity-kind": "meeting", "activity-text": "Demo with the team", "activity-duration_minutes": "45"},
    ]
    for data in posts:
        assert web.post(f"/leads/{lead.pk}/activity/", data).status_code == 302
    stored = {i.type: i.properties for i in Interaction.objects.filter(lead=lead)}
    assert stored["note"] == {"by": "sam", "text": "Prefers email. Budget in Q3."}
    assert stored["call"] == {"by": "sam", "outcome": "left_voicemail", "minutes": 2}
    assert stored["meeting"] == {"by": "sam", "text": "Demo with the team", "minutes": 45}
    page = web.get(f"/leads/{lead.pk}/").content.decode()
    timeline = page[page.index('id="timeline"') :]
    assert "Prefers email. Budget in Q3." in timeline and "Left voicemail" in timeline and "45 min" in timeline
    assert timeline.count('class="activity activity-') == 3


@pytest.mark.django_db
def test_a_note_without_text_is_refused_with_a_message(marketer_web):
    lead = LeadFactory()
    response = marketer_web.post(f"/leads/{lead.pk}/activity/", {"activity-kind": "note", "activity-text": " "})
    assert response.status_code == 400
    assert "Write the note." in response.content.decode()
    bad_outcome = marketer_web.post(
        f"/leads/{lead.pk}/activity/", {"activity-kind": "meeting", "activity-outcome": "connected"}
    )
    assert bad_outcome.status_code == 400
    assert not Interaction.objects.filter(lead=lead).exists()


@pytest.mark.django_db
def test_a_rule_on_connected_calls_scores_a_logged_call(marketer_web, marketer):
    rule = rule_create(
        actor=marketer,
        recompute=False,
        name="Talked to us",
        dimension="engagement",
        source="interaction",
        interaction_type="call",
        property="outcome",
        operator="equals",
        value="connected",
        points=12,
    )
    lead = LeadFactory()
    marketer_web.post(f"/leads/{lead.pk}/activity/", {"activity-kind": "call", "activity-outcome": "no_answer"})
    assert not ScoreContribution.objects.filter(lead=lead, rule=rule).exists()
    marketer_web.post(f"/leads/{lead.pk}/activity/", {"activity-kind": "call", "activity-outcome": "connected"})
    contribution = ScoreContribution.objects.get(lead=lead, rule=rule)
    assert contribution.points == 12
    lead.refresh_from_db()
    assert lead.engagement_points == pytest.approx(12)


@pytest.mark.django_db
def test_the_api_and_the_rule_editor_know_the_new_types(marketer_client, marketer_web):
    lead = LeadFactory()
    for kind in ("note", "call", "meeting"):
        response = marketer_client.post(
            "/api/v1/interactions/", {"lead": lead.pk, "type": kind, "properties": {"text": "hi"}}, format="json"
        )
        assert response.status_code == 201, response.content
    editor = marketer_web.get("/scoring/rules/new/").content.decode()
    for kind in ("note", "call", "meeting"):
        assert f'<option value="{kind}"' in editor


@pytest.mark.django_db
def test_the_score_chart_plots_the_ledgers_cumulative_sums(marketer_web):
    lead = LeadFactory(title="CEO")
    now = timezone.now()
    for days, kind in ((9, "demo_request"), (5, "webinar_attended"), (2, "unsubscribe"), (1, "demo_request")):
        services.interaction_record(lead=lead, type=kind, occurred_at=now - timedelta(days=days))
    ledger = list(ScoreContribution.objects.filter(lead=lead).order_by("at").values_list("at", "points"))
    assert len(ledger) >= 4
    expected, total, by_instant = [], 0.0, {}
    for at, points in ledger:
        by_instant[at] = by_instant.get(at, 0.0) + points
    for at in sorted(by_instant):
        total += by_instant[at]
        expected.append((at.isoformat(), round(total, 4)))

    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    chart = page[page.index('id="score-chart"') :]
    drawn = [
        (at, float(total))
        for at, total in re.findall(r'class="chart-point"[^>]*data-at="([^"]+)" data-total="([^"]+)"', chart)
    ]
    assert [t for _, t in drawn] == pytest.approx([t for _, t in expected])
    assert len(drawn) == len(expected)
    ys = [float(y) for y in re.findall(r'class="chart-point" cx="[^"]+" cy="([^"]+)"', chart)]
    # Higher totals are drawn higher (smaller y).
    order_by_total = np.argsort([t for _, t in expected], kind="stable")
    assert [ys[i] for i in order_by_total] == sorted(ys, reverse=True)


@pytest.mark.django_db
def test_a_lead_without_points_shows_an_empty_chart_message(marketer_web):
    lead = LeadFactory(title="")
    ScoreContribution.objects.filter(lead=lead).delete()
    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    chart = page[page.index('id="score-chart"') :][:800]
    assert "No rule has given this lead points yet." in chart and "<polyline" not in chart


@pytest.mark.django_db
def test_the_predictive_factors_behind_the_probability_are_shown_with_their_direction(marketer_web):
    activate_model({"count:demo_request": 1.5, "title_student": -2.0, "count:page_view": 0.1})
    lead = LeadFactory(title="Student assistant")
    services.interaction_record(lead=lead, type="demo_request", occurred_at=timezone.now() - timedelta(hours=2))
    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    factors = page[page.index('id="predictive-factors"') :]
    factors = factors[: factors.index("</section>")]
    items = re.findall(r'class="factor factor-(up|down)" data-feature="([^"]+)"', factors)
    assert items == [("down", "title_student"), ("up", "count:demo_request")]
    assert "Student or intern" in factors


@pytest.mark.django_db
def test_without_a_model_the_page_says_so(marketer_web):
    lead = LeadFactory()
    page = marketer_web.get(f"/leads/{lead.pk}/").content.decode()
    assert "No predictive model is active yet" in page


@pytest.mark.django_db
def test_an_admin_may_edit_any_lead_and_a_rep_with_no_lead_may_not(browser_for, admin_user):
    lead = LeadFactory(first_name="A")
    admin = browser_for(admin_user)
    assert admin.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-first_name": "B"}).status_code == 302
    rep = browser_for(make_rep("rita"))
    assert rep.post(f"/leads/{lead.pk}/profile/", {**PROFILE, "profile-first_name": "C"}).status_code == 403
    assert Lead.objects.get(pk=lead.pk).first_name == "B"

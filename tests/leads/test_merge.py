"""Merging two leads that are one person: POST /api/v1/leads/<id>/merge/ and the alias intake."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from leadfunnel.models import AuditEvent
from leads.analytics import funnel_summary
from leads.models import FormSubmission, Interaction, Lead, LeadAlias, Opportunity, StageTransition
from leads.services import interaction_record, lead_erase, lead_submit_form, leads_enter_funnel
from nurturing.models import Enrollment, Message, Sequence
from scoring.models import LeadRuleTotal, ScoreContribution
from scoring.services import scoring_recompute_all
from tests.factories import CompanyFactory, FormFactory, LeadFactory

pytestmark = pytest.mark.django_db


def _submit(form, email, **data):
    return lead_submit_form(form=form, data={"email": email, **data})


def _event(lead, type_, **properties):
    interaction, _ = interaction_record(type=type_, lead=lead.pk, properties=properties)
    return interaction


def _sequence(name):
    return Sequence.objects.create(name=name)


def _message(lead, token):
    return Message.objects.create(lead=lead, channel="email", to=lead.email, body="<p>Hi</p>", token=token)


@pytest.fixture
def pair(db):
    """Two records of Dana Kim: the survivor came from a form, the duplicate from an event list,
    each with history, scores, enrolments and messages."""
    form = FormFactory(slug="contact", channel_weight=5)
    _submit(form, "dana@northwind.example", first_name="Dana", last_name="Kim", title="CTO")
    survivor = Lead.objects.get(email="dana@northwind.example")
    _event(survivor, "page_view", url="https://northwind.example/pricing")
    _submit(form, "d.kim@northwind.example", first_name="Dana", last_name="Kim", phone="+49 30 1234567")
    duplicate = Lead.objects.get(email="d.kim@northwind.example")
    Lead.objects.filter(pk=duplicate.pk).update(title="Chief Technology Officer", tags=["webinar"])
    _event(duplicate, "webinar_attended")
    _event(duplicate, "demo_request")
    Lead.objects.filter(pk=survivor.pk).update(tags=["vip"])
    both = _sequence("Both")
    only_duplicate = _sequence("Only duplicate")
    Enrollment.objects.create(lead=survivor, sequence=both)
    Enrollment.objects.create(lead=duplicate, sequence=both)
    Enrollment.objects.create(lead=duplicate, sequence=only_duplicate)
    _message(survivor, "t-survivor")
    _message(duplicate, "t-duplicate")
    Opportunity.objects.create(
        lead=duplicate, buying_cycle="Q1", influencer="CTO", timeframe="Q1", opportunity_size=Decimal("5000"),
        next_step="Call",
    )  # fmt: skip
    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    return survivor, duplicate


def _counts(lead_id):
    return {
        "interactions": Interaction.objects.filter(lead_id=lead_id).count(),
        "submissions": FormSubmission.objects.filter(lead_id=lead_id).count(),
        "transitions": StageTransition.objects.filter(lead_id=lead_id).count(),
        "contributions": ScoreContribution.objects.filter(lead_id=lead_id).count(),
        "messages": Message.objects.filter(lead_id=lead_id).count(),
        "enrollments": Enrollment.objects.filter(lead_id=lead_id).count(),
        "opportunities": Opportunity.objects.filter(lead_id=lead_id).count(),
    }


def test_a_merge_moves_every_row_of_the_duplicate_to_the_survivor(marketer_client, marketer, pair):
    survivor, duplicate = pair
    before_s, before_d = _counts(survivor.pk), _counts(duplicate.pk)
    assert before_d["contributions"] > 0 and before_d["transitions"] > 0
    duplicate_history = set(StageTransition.objects.filter(lead=duplicate).values_list("id", flat=True))

    response = marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["lead"]["id"] == survivor.pk
    assert body["merged"] == {"id": duplicate.pk, "email": "d.kim@northwind.example"}
    assert not Lead.objects.filter(pk=duplicate.pk).exists()
    after = _counts(survivor.pk)
    for kind in ("interactions", "submissions", "messages", "enrollments", "opportunities"):
        assert after[kind] == before_s[kind] + before_d[kind], kind
    assert set(StageTransition.objects.filter(lead=survivor).values_list("id", flat=True)) >= duplicate_history
    # Together the two records' engagement qualifies the person: the funnel promoted the survivor.
    survivor.refresh_from_db()
    assert survivor.stage == "mql" and survivor.owner_id is None
    assert StageTransition.objects.filter(lead=survivor, to_stage="mql", cause="rule").count() == 1
    assert _counts(duplicate.pk) == dict.fromkeys(after, 0)
    # Every interaction's contribution now belongs to the survivor (the ledger was rebuilt).
    duplicate_events = set(
        Interaction.objects.filter(type__in=["webinar_attended", "demo_request"]).values_list("id", flat=True)
    )
    assert set(
        ScoreContribution.objects.filter(interaction_id__in=duplicate_events).values_list("lead_id", flat=True)
    ) == {survivor.pk}
    assert not LeadRuleTotal.objects.filter(lead_id=duplicate.pk).exists()
    audit = AuditEvent.objects.get(action="lead.merged")
    assert audit.object_id == str(survivor.pk) and audit.actor == marketer
    assert audit.changes["duplicate"] == {"id": duplicate.pk, "email": "d.kim@northwind.example"}


def test_one_active_enrolment_per_sequence_survives(marketer_client, pair):
    survivor, duplicate = pair
    kept = Enrollment.objects.get(lead=survivor, sequence__name="Both")
    clashing = Enrollment.objects.get(lead=duplicate, sequence__name="Both")

    marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")

    kept.refresh_from_db()
    clashing.refresh_from_db()
    assert kept.status == "active" and kept.lead_id == survivor.pk
    assert clashing.status == "exited" and clashing.exit_reason == "merged" and clashing.lead_id == survivor.pk
    assert Enrollment.objects.get(sequence__name="Only duplicate").status == "active"
    assert Enrollment.objects.filter(lead=survivor, status="active").count() == 2


def test_the_merged_score_equals_a_full_recompute(marketer_client, pair):
    survivor, duplicate = pair
    response = marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    merged = response.json()["lead"]
    contributions = sorted(
        ScoreContribution.objects.filter(lead_id=survivor.pk).values_list("rule_id", "interaction_id", "points")
    )
    assert merged["engagement_score"] > 0

    scoring_recompute_all(promote=False)

    survivor.refresh_from_db()
    assert (merged["score"], merged["fit_score"], merged["engagement_score"]) == (
        survivor.score,
        survivor.fit_score,
        survivor.engagement_score,
    )
    assert contributions == sorted(
        ScoreContribution.objects.filter(lead_id=survivor.pk).values_list("rule_id", "interaction_id", "points")
    )


def test_the_fuller_value_wins_unless_the_marketer_chooses(marketer_client, pair):
    survivor, duplicate = pair
    response = marketer_client.post(
        f"/api/v1/leads/{survivor.pk}/merge/",
        {"duplicate": duplicate.pk, "fields": {"title": "survivor"}},
        format="json",
    )
    assert response.status_code == 200
    survivor.refresh_from_db()
    assert survivor.title == "CTO"  # chosen, though the duplicate's is longer
    assert survivor.phone == "+49 30 1234567"  # blank on the survivor: the duplicate's fills it
    assert survivor.email == "dana@northwind.example"
    assert survivor.tags == ["vip", "webinar"]
    assert response.json()["fields"]["title"] == "survivor"
    assert response.json()["fields"]["phone"] == "duplicate"


def test_without_a_choice_the_longer_value_is_kept(marketer_client, pair):
    survivor, duplicate = pair
    marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    survivor.refresh_from_db()
    assert survivor.title == "Chief Technology Officer"


def test_the_alias_resolves_later_submissions_and_events_to_the_survivor(marketer_client, pair):
    survivor, duplicate = pair
    marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    assert LeadAlias.objects.get(email="d.kim@northwind.example").lead_id == survivor.pk
    leads_before = Lead.objects.count()

    result = _submit(FormFactory(slug="newsletter"), "D.Kim@Northwind.example", city="Berlin")
    response = marketer_client.post(
        "/api/v1/interactions/", {"email": "d.kim@northwind.example", "type": "email_click"}, format="json"
    )
    bulk = marketer_client.post(
        "/api/v1/interactions/bulk/",
        [{"email": "d.kim@northwind.example", "type": "page_view"}, {"email": "dana@northwind.example", "type": "page_view"}],
        format="json",
    )  # fmt: skip
    created = marketer_client.post(
        "/api/v1/leads/", {"email": "d.kim@northwind.example", "source": "crm"}, format="json"
    )

    assert result.lead.pk == survivor.pk and not result.created
    assert FormSubmission.objects.get(pk=result.submission_id).lead_id == survivor.pk
    assert response.status_code == 201 and response.json()["lead"] == survivor.pk
    assert bulk.json()["accepted"] == 2 and bulk.json()["created_leads"] == []
    assert created.status_code == 409 and str(survivor.pk) in created.json()["message"]
    assert Lead.objects.count() == leads_before
    survivor.refresh_from_db()
    assert survivor.city == "Berlin"
    assert Interaction.objects.filter(lead=survivor, type="email_click").count() == 1


def test_the_alias_is_resolved_when_unknown_emails_are_rejected(marketer_client, pair, settings):
    settings.LEADFUNNEL_UNKNOWN_EMAIL_EVENTS = "reject"
    survivor, duplicate = pair
    marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    one = marketer_client.post(
        "/api/v1/interactions/", {"email": "d.kim@northwind.example", "type": "email_open"}, format="json"
    )
    bulk = marketer_client.post(
        "/api/v1/interactions/bulk/", [{"email": "d.kim@northwind.example", "type": "email_open"}], format="json"
    )
    assert one.status_code == 201 and one.json()["lead"] == survivor.pk
    assert bulk.json()["accepted"] == 1 and bulk.json()["errors"] == []


def test_a_csv_import_row_with_the_alias_fills_the_survivor(marketer, pair):
    from leads import imports
    from leads.services import lead_merge

    survivor, duplicate = pair
    lead_merge(survivor=survivor.pk, duplicate=duplicate.pk)
    leads_before = Lead.objects.count()
    csv = "email,city,industry\nD.Kim@northwind.example,Hamburg,Logistics\ndana@northwind.example,,Retail\n"
    job = imports.import_create(actor=marketer, content=csv.encode(), filename="list.csv", mapping=None, queue=False)
    job = imports.import_run(job_id=job.pk)

    assert (job.created_count, job.updated_count, job.error_count) == (0, 1, 0)
    assert Lead.objects.count() == leads_before
    survivor.refresh_from_db()
    assert (survivor.city, survivor.industry) == ("Hamburg", "Logistics")


def test_entering_the_funnel_with_an_alias_finds_the_survivor(pair):
    survivor, duplicate = pair
    from leads.services import lead_merge

    lead_merge(survivor=survivor.pk, duplicate=duplicate.pk)
    entered = leads_enter_funnel(
        entries=[
            _entry("d.kim@northwind.example"),
            _entry("dana@northwind.example"),
        ]
    )
    assert entered.leads["d.kim@northwind.example"].pk == survivor.pk
    assert entered.leads["dana@northwind.example"].pk == survivor.pk
    assert entered.created == set()


def _entry(email):
    from leads.services import Entry

    now = timezone.now()
    return Entry(
        lead=Lead(email=email, created_at=now, updated_at=now, stage_changed_at=now),
        cause="system",
        cause_ref="import:1",
        reason="Imported",
    )


def test_the_funnel_counts_each_stage_entry_once_after_a_merge(marketer_client, pair, sales_rep):
    survivor, duplicate = pair
    StageTransition.objects.create(lead=duplicate, from_stage="visitor", to_stage="mql", at=timezone.now())
    Lead.objects.filter(pk=duplicate.pk).update(stage="mql", owner=sales_rep, stage_changed_at=timezone.now())
    since, until = timezone.now() - timedelta(days=1), timezone.now() + timedelta(days=1)
    before = funnel_summary(since=since, until=until)["totals"]["entries"]

    marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")

    after = funnel_summary(since=since, until=until)["totals"]["entries"]
    assert after["mql"] == before["mql"] == 1
    assert after["visitor"] == before["visitor"] - 1  # two records, one person
    survivor.refresh_from_db()  # the duplicate was further along: the survivor takes its place
    assert survivor.stage == "mql" and survivor.owner == sales_rep


def test_sales_reps_may_not_merge(sales_client, pair):
    survivor, duplicate = pair
    response = sales_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    assert response.status_code == 403
    assert Lead.objects.filter(pk=duplicate.pk).exists() and not LeadAlias.objects.exists()


def test_an_admin_may_merge(admin_client_api, pair):
    survivor, duplicate = pair
    response = admin_client_api.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "duplicate"),
        ({"duplicate": "abc"}, "duplicate"),
        ({"duplicate": 999999}, "duplicate"),
        ({"duplicate": "SELF"}, "duplicate"),
        ({"duplicate": "OTHER", "fields": {"title": "mine"}}, "fields.title"),
        ({"duplicate": "OTHER", "fields": {"score": "duplicate"}}, "fields.score"),
        ({"duplicate": "OTHER", "fields": ["title"]}, "fields"),
    ],
)
def test_bad_merges_are_400_and_change_nothing(marketer_client, pair, body, field):
    survivor, duplicate = pair
    before = _counts(duplicate.pk)
    body = {
        key: (survivor.pk if value == "SELF" else duplicate.pk if value == "OTHER" else value)
        for key, value in body.items()
    }
    response = marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert Lead.objects.filter(pk=duplicate.pk).exists()
    assert not LeadAlias.objects.exists() and not AuditEvent.objects.filter(action="lead.merged").exists()
    assert _counts(duplicate.pk) == before


@pytest.mark.parametrize("erased", ["survivor", "duplicate"])
def test_an_erased_lead_is_not_merged(marketer_client, admin_user, pair, erased):
    survivor, duplicate = pair
    lead_erase(lead=(survivor if erased == "survivor" else duplicate).pk, actor=admin_user)
    before = _counts(duplicate.pk)
    response = marketer_client.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    assert response.status_code == 409, response.content
    assert Lead.objects.filter(pk=duplicate.pk).exists()
    assert not LeadAlias.objects.exists() and not AuditEvent.objects.filter(action="lead.merged").exists()
    assert _counts(duplicate.pk) == before


def test_merging_into_an_unknown_lead_is_404(marketer_client, pair):
    _, duplicate = pair
    response = marketer_client.post("/api/v1/leads/999999/merge/", {"duplicate": duplicate.pk}, format="json")
    assert response.status_code == 404


def test_changing_an_email_to_a_taken_one_points_to_merge(marketer_client, pair):
    survivor, duplicate = pair
    response = marketer_client.patch(
        f"/api/v1/leads/{survivor.pk}/", {"email": "d.kim@northwind.example"}, format="json"
    )
    assert response.status_code == 409
    assert f"/api/v1/leads/{survivor.pk}/merge/" in response.json()["message"]
    assert str(duplicate.pk) in response.json()["message"]


def test_the_company_goes_with_the_company_name_kept(marketer_client):
    first = LeadFactory(company=CompanyFactory(name="Old"), company_name="Old")
    second = LeadFactory(company=CompanyFactory(name="Northwind Traders"), company_name="Northwind Traders")
    marketer_client.post(f"/api/v1/leads/{first.pk}/merge/", {"duplicate": second.pk}, format="json")
    first.refresh_from_db()
    assert first.company_name == "Northwind Traders" and first.company_id == second.company_id

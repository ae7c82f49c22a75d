"""Races on PostgreSQL: concurrent submissions of one new email, concurrent accepts of one lead."""

import json
import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from leads.models import FormSubmission, Interaction, Lead, StageTransition
from leads.services import lead_change_stage
from tests.factories import FormFactory, LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released at the same instant; each has its own connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_32_concurrent_submissions_of_one_new_email_make_one_lead(settings):
    settings.INTAKE_RATE_LIMIT = "off"
    FormFactory(slug="race")

    def submit(i: int) -> int:
        body = {"email": "Race.Winner@Acme.example" if i % 2 else "race.winner@acme.example", "first_name": f"R{i}"}
        response = APIClient().post(
            "/api/v1/forms/race/submit/", data=json.dumps(body), content_type="application/json"
        )
        return response.status_code

    statuses = run_together(32, submit)
    assert statuses == [201] * 32
    lead = Lead.objects.get()
    assert lead.email == "race.winner@acme.example"
    assert FormSubmission.objects.filter(lead=lead).count() == 32
    assert Interaction.objects.filter(lead=lead, type="form_submit").count() == 32
    assert StageTransition.objects.filter(lead=lead).count() == 1


def test_concurrent_retries_with_one_idempotency_key_store_one_submission(settings):
    settings.INTAKE_RATE_LIMIT = "off"
    FormFactory(slug="retry")

    def submit(i: int) -> tuple[int, int]:
        response = APIClient().post(
            "/api/v1/forms/retry/submit/",
            data=json.dumps({"email": "retry@acme.example"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="same-key",
        )
        return response.status_code, response.json().get("id")

    results = run_together(8, submit)
    assert {status for status, _ in results} == {201}
    assert len({submission_id for _, submission_id in results}) == 1
    assert FormSubmission.objects.count() == 1 and Interaction.objects.count() == 1


def test_two_concurrent_accepts_one_wins_the_other_gets_409(sales_rep, admin_user, client_for):
    lead = LeadFactory()
    lead_change_stage(lead=lead, to_stage="mql", cause="rule", owner=sales_rep)
    clients = [client_for(sales_rep), client_for(admin_user)]

    def accept(i: int) -> int:
        return clients[i].post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json").status_code

    statuses = run_together(2, accept)
    assert sorted(statuses) == [200, 409]
    assert StageTransition.objects.filter(lead=lead, to_stage="sal").count() == 1
    lead.refresh_from_db()
    assert lead.stage == "sal"


def test_concurrent_bulk_batches_touching_the_same_leads_do_not_deadlock(marketer, client_for):
    leads = LeadFactory.create_batch(30)
    client = [client_for(marketer) for _ in range(4)]

    def bulk(i: int) -> int:
        ordered = leads if i % 2 else list(reversed(leads))
        events = [{"lead": lead.pk, "type": "page_view"} for lead in ordered]
        events += [{"email": f"shared{j}@acme.example", "type": "email_open"} for j in range(10)]
        response = client[i].post("/api/v1/interactions/bulk/", events, format="json")
        return response.status_code

    assert run_together(4, bulk) == [200] * 4
    assert Interaction.objects.count() == 4 * 40
    assert Lead.objects.filter(email__startswith="shared").count() == 10
    assert connection.vendor == "postgresql"

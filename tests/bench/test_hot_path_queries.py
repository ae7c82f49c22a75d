"""End-to-end query counts of the hot paths the benchmarks load, scoring included.

The apps pin their own queries with scoring switched off; these guard the whole
request as the benchmarks drive it: the count must not grow with a lead's
history nor with the number of leads in a bulk batch.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import FormFactory, InteractionFactory, LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def count_queries(call) -> int:
    with CaptureQueriesContext(connection) as ctx:
        call()
    return len(ctx.captured_queries)


def test_a_form_submission_with_scoring_costs_the_same_queries_for_a_busy_lead(anon_client):
    FormFactory(slug="bench-contact")
    busy = LeadFactory(email="busy@acme.example", company=None)
    quiet = LeadFactory(email="quiet@acme.example", company=None)
    InteractionFactory.create_batch(60, lead=busy)

    def submit(email: str):
        response = anon_client.post(
            "/api/v1/forms/bench-contact/submit/", {"email": email, "first_name": "Ada"}, format="json"
        )
        assert response.status_code == 201, response.content

    submit("warmup@acme.example")
    assert count_queries(lambda: submit(busy.email)) == count_queries(lambda: submit(quiet.email))


def test_a_bulk_batch_with_scoring_costs_the_same_queries_for_20_or_200_leads(marketer_client):
    few = LeadFactory.create_batch(20, title="")
    many = LeadFactory.create_batch(200, title="")
    event = {"type": "page_view", "properties": {"url": "https://acme.example/blog/post"}}

    def post(leads) -> None:
        events = [{**event, "lead": leads[i % len(leads)].pk} for i in range(1000)]
        response = marketer_client.post("/api/v1/interactions/bulk/", {"events": events}, format="json")
        assert response.status_code == 200 and response.json()["accepted"] == 1000, response.content

    post(few)  # warm-up: both sets of leads have been scored once before measuring
    post(many)
    assert count_queries(lambda: post(many)) == count_queries(lambda: post(few))

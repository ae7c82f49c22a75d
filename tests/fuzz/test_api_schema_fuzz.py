"""Schemathesis over every operation of /api/schema/, as an admin with a token: no 5xx,
responses conform to the schema. Bounded budget: a few examples per operation."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.factories import FormFactory, LeadFactory

pytestmark = [pytest.mark.faults]

EXAMPLES = 6
# No 5xx; documented status codes only; bodies that match the documented schema. (Positive-data
# acceptance is left out: schema-valid is not business-valid, e.g. wrong credentials or an illegal move.)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Found by this test and fixed: 41 operations answering undocumented status codes, the leads,
# webhooks, imports and sequences lists documented as bare arrays, the idle recompute status.
# No exceptions remain; add one here only with the owner's fix on its way.
KNOWN_SCHEMA_MISMATCHES: set[str] = set()


@pytest.fixture
def api_schema(db):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from leadfunnel.wsgi import application

    # As Django's test client does: a request must not close the test's connection (and transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(admin_user) -> str:
    FormFactory(slug="contact")
    LeadFactory.create_batch(3)
    return Token.objects.get_or_create(user=admin_user)[0].key


def test_every_api_operation_answers_without_5xx_and_matches_the_schema(api_schema, admin_token):
    headers = {"Authorization": f"Token {admin_token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40
    failures: dict[str, str] = {}
    calls = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case):
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    print(f"\nschemathesis: {len(operations)} operations, {calls} requests, {len(failures)} failing")
    server_errors = {name: error for name, error in failures.items() if "Server error" in error}
    assert not server_errors, "\n\n".join(f"{name}:\n{error}" for name, error in server_errors.items())
    unexpected = {
        name: error
        for name, error in failures.items()
        if not (name in KNOWN_SCHEMA_MISMATCHES and "Response violates schema" in error)
    }
    assert not unexpected, "\n\n".join(f"{name}:\n{error}" for name, error in unexpected.items())

"""Schemathesis over every operation of /api/schema/, as an admin with a token: no 5xx,
responses conform to the schema.

Thousands of generated cases per run (``FUZZ_EXAMPLES`` per operation, 30 by default, about
2,100 in all), schema-valid and schema-violating alike: with
``CI`` set the seed is fixed, so CI runs are repeatable; locally it is random each run, so every
run explores new input. The seed is printed; ``FUZZ_SEED=<n>`` replays a run.
"""

import os
import random
import time

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.factories import FormFactory, LeadFactory

pytestmark = [pytest.mark.faults]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
# Valid input finds what the code does with what it accepts; invalid input, how it refuses.
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CI_SEED = 20261208
SEED = int(os.environ.get("FUZZ_SEED") or (CI_SEED if os.environ.get("CI") else random.randrange(2**32)))
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
    only = os.environ.get("FUZZ_OPERATIONS")  # e.g. "POST /api/v1/sequences/" to replay one operation
    if only:
        operations = [
            op for op in operations if any(o.strip() in f"{op.method.upper()} {op.path}" for o in only.split(","))
        ]
    timings: dict[str, float] = {}
    statuses: dict[int, int] = {}
    failures: dict[str, str] = {}
    server_errors: dict[str, str] = {}
    calls = 0
    started = time.monotonic()
    print(f"\nschemathesis: seed {SEED} (replay with FUZZ_SEED={SEED}), {EXAMPLES} examples per operation")

    for operation in operations:

        @seed(SEED)
        @given(case=st.one_of(operation.as_strategy(mode) for mode in MODES))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            nonlocal calls
            calls += 1
            # A savepoint per case: a database error in one request must not poison the next ones.
            with transaction.atomic():
                response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code // 100] = statuses.get(response.status_code // 100, 0) + 1

        began = time.monotonic()
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            text = str(exc)
            name = f"{operation.method.upper()} {operation.path}"
            failures[name] = text[:3000]
            if "Server error" in text:
                server_errors[name] = text[:6000]
        timings[f"{operation.method.upper()} {operation.path}"] = time.monotonic() - began
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(operations)} operations, {calls} requests in {elapsed:.0f} s, {len(failures)} failing")
    print("answers:", ", ".join(f"{k}xx {v}" for k, v in sorted(statuses.items())))
    print("slowest:", ", ".join(f"{name} {t:.1f}s" for name, t in sorted(timings.items(), key=lambda x: -x[1])[:8]))
    assert not server_errors, "\n\n".join(f"{name}:\n{error}" for name, error in server_errors.items())
    unexpected = {
        name: error
        for name, error in failures.items()
        if not (name in KNOWN_SCHEMA_MISMATCHES and "Response violates schema" in error)
    }
    assert not unexpected, "\n\n".join(f"{name}:\n{error}" for name, error in unexpected.items())

"""The executor's batch path: a fixed handful of statements per batch, the one-statement send claim,
tracking signatures identical to Django's signer, fresh planner statistics after a bulk enrolment."""

import re
import threading

import pytest
from django.core import mail, signing
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from nurturing import services
from nurturing.models import Enrollment, StepExecution
from nurturing.services import enrollment as enrollment_services
from nurturing.services import executor
from nurturing.tracking import SALT, token_parse, tracking_token
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence, sent_to

pytestmark = pytest.mark.django_db

NURTURING_TABLES = re.compile(r'"?nurturing_(enrollment|step|stepexecution|message|sequence)"?\b')


def _enrol(sequence, n: int) -> list:
    leads = LeadFactory.create_batch(n)
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])
    return leads


def _executor_statements(queries: list[dict]) -> list[str]:
    return [q["sql"].split(" ", 1)[0] for q in queries if NURTURING_TABLES.search(q["sql"].split(" WHERE ")[0])]


@pytest.mark.postgres  # SQLite splits bulk statements by its variable limit
def test_a_batch_runs_the_same_nine_executor_statements_for_2_or_40_enrolments():
    sequence = make_sequence()
    _enrol(sequence, 1)
    services.process_due_steps(batch_size=100)  # warm-up: the scoring app installs its default rules
    _enrol(sequence, 2)
    with CaptureQueriesContext(connection) as small:
        assert services.process_due_steps(batch_size=100) == 4
    _enrol(sequence, 40)
    with CaptureQueriesContext(connection) as large:
        assert services.process_due_steps(batch_size=100) == 80

    assert len(large.captured_queries) == len(small.captured_queries)
    # Plan: claim (with leads), steps, cap counts, sequences, insert executions, insert messages,
    # update enrolments. Deliver: lock and flip the sends, mark executions and messages sent.
    assert _executor_statements(large.captured_queries) == [
        "SELECT",
        "SELECT",
        "SELECT",
        "SELECT",
        "INSERT",
        "INSERT",
        "UPDATE",
        "WITH",
        "WITH",
    ]
    assert len(mail.outbox) == 43
    assert StepExecution.objects.filter(state="sent").count() == 43


def test_the_send_claim_flips_each_pending_execution_once():
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"}])
    _enrol(sequence, 3)
    executed, planned = executor._plan_batch(batch_size=10, now=None)
    ids = sorted(m.execution_id for m in planned)
    assert executed == 3 and len(ids) == 3

    first = executor._claim_sends(execution_ids=ids, limit=10, now=planned[0].created_at)
    again = executor._claim_sends(execution_ids=ids, limit=10, now=planned[0].created_at)

    assert sorted(first) == ids and again == []
    assert set(StepExecution.objects.values_list("state", "attempts")) == {("sending", 1)}
    assert services.deliver_executions(planned=planned) == 0  # already claimed: not sent again
    assert mail.outbox == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliverers_claiming_the_same_executions_at_once_split_them_without_overlap():
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"}])
    _enrol(sequence, 30)
    _, planned = executor._plan_batch(batch_size=100, now=None)
    ids = [m.execution_id for m in planned]
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = []

    def claim() -> None:
        try:
            barrier.wait()
            claimed.append(executor._claim_sends(execution_ids=ids, limit=100, now=planned[0].created_at))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(claimed) == 2
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)  # every execution once, none twice
    assert set(StepExecution.objects.values_list("state", "attempts")) == {("sending", 1)}


def test_tracking_tokens_are_signed_exactly_like_djangos_signer_and_parse_back():
    django_signer = signing.Signer(salt=SALT)
    for value, kind, index in [("abc", "o", None), ("Zx-_9", "c", 0), ("Zx-_9", "c", 12), ("q", "u", None)]:
        token = tracking_token(value, kind, index)
        plain = f"{value}.{kind}" if index is None else f"{value}.{kind}.{index}"
        assert token == django_signer.sign(plain)
        assert token_parse(token, kind) == (value, index)


def test_the_list_unsubscribe_header_carries_the_same_working_link_as_the_footer():
    sequence = make_sequence(steps=[{"kind": "email", "subject": "Hi", "body": "<p>Hi</p>"}])
    [lead] = _enrol(sequence, 1)

    services.process_due_steps(batch_size=10)

    [email] = sent_to(lead.email)
    footer = re.search(r'href="([^"]+)">Unsubscribe</a>', email.alternatives[0][0]).group(1)
    assert email.extra_headers["List-Unsubscribe"] == f"<{footer}>"
    assert f"Unsubscribe: {footer}" in email.body
    token = footer.rstrip("/").rsplit("/", 1)[-1]
    assert token_parse(token, "u")[0] == lead.nurture_messages.get().token


@pytest.mark.postgres
def test_a_bulk_enrolment_refreshes_the_planner_statistics_of_the_enrolment_table(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(enrollment_services, "ANALYZE_AFTER", 5)
    sequence = make_sequence()

    def reltuples() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Enrollment._meta.db_table])
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Enrollment._meta.db_table}")  # the empty table: 0 rows
    assert reltuples() == 0

    with django_capture_on_commit_callbacks(execute=True):  # the refresh runs after commit
        _enrol(sequence, 4)  # below the threshold: statistics untouched
    assert reltuples() == 0
    with django_capture_on_commit_callbacks(execute=True):
        _enrol(sequence, 6)

    assert reltuples() == Enrollment.objects.count() == 10

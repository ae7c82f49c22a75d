"""The nurturing services' hand-written statements and vendor forks, by name, each with its SQLite
(embedded default) equivalent.

One multi-row statement per table and batch on PostgreSQL keeps a batch's statement count flat
however many enrolments it claims (pinned in tests); with every ``connection.vendor`` fork here,
planning, delivery and enrolment read as steps.
"""

from datetime import datetime, timedelta
from operator import attrgetter

from django.db import connection, transaction
from django.db.models import F, Model, QuerySet

from ..conf import nurture_setting
from ..models import Enrollment, ExecutionState, Message, StepExecution
from .batch import _Execution, _Outgoing

_EXECUTION_COLUMNS = (
    "enrollment_id",
    "sequence_id",
    "step_id",
    "position",
    "run",
    "kind",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "finished_at",
    "error",
    "detail",
)
_MESSAGE_COLUMNS = (
    "execution_id",
    "lead_id",
    "sequence_id",
    "position",
    "purpose",
    "channel",
    "to",
    "subject",
    "variant",
    "body",
    "text_body",
    "token",
    "links",
    "created_at",
)


def _executions_insert(executions: list[_Execution]) -> None:
    _planned_insert(StepExecution, _EXECUTION_COLUMNS, executions)


def _messages_insert(messages: list[_Outgoing]) -> None:
    _planned_insert(Message, _MESSAGE_COLUMNS, messages)


def _planned_insert(model: type[Model], columns: tuple[str, ...], planned: list) -> None:
    """Insert planned rows (their attributes are named like the columns) and give each its id."""
    values = attrgetter(*columns)
    for item, pk in zip(planned, _rows_insert(model, columns, [values(p) for p in planned]), strict=True):
        item.pk = pk


_INSERT_CHUNK = 2000


def _rows_insert(model: type[Model], columns: tuple[str, ...], rows: list[tuple]) -> list[int]:
    """Insert plain rows (Python values, in ``columns`` order) and return their ids, in order.

    On PostgreSQL a multi-row ``INSERT … RETURNING id`` with bound parameters: Django's
    bulk_create builds a model instance and prepares every value field by field, which cost
    more CPU than the statement. SQLite (the embedded default) goes through bulk_create.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows])
        return [obj.pk for obj in objs]
    json_columns = [
        (index, model._meta.get_field(column))
        for index, column in enumerate(columns)
        if model._meta.get_field(column).get_internal_type() == "JSONField"
    ]
    if json_columns:
        prepared = []
        for row in rows:
            row = list(row)
            for index, json_field in json_columns:
                row[index] = json_field.get_db_prep_save(row[index], connection)
            prepared.append(row)
        rows = prepared
    quote = connection.ops.quote_name
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            # Identifiers come from the model's metadata; every value is a bound parameter.
            sql = (
                f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "  # noqa: S608
                f"VALUES {', '.join([placeholder] * len(chunk))} RETURNING {quote(model._meta.pk.column)}"
            )
            cursor.execute(sql, [value for row in chunk for value in row])
            ids += [row[0] for row in cursor.fetchall()]
    return ids


_ENROLLMENT_FIELDS = ("status", "current_step", "run", "next_due_at", "exited_at", "exit_reason", "claimed_at")


def _enrollments_save(enrollments: list[Enrollment]) -> None:
    """Write the batch's new positions in one statement.

    On PostgreSQL an ``UPDATE … FROM unnest(arrays)`` that also names the ids with ``= ANY``, so the
    rows are found through the primary key (a bare join on the unnested ids is planned as a hash
    join over the whole enrolment table). Django's bulk_update builds a CASE per field and row,
    which costs more CPU than the rest of the batch together. SQLite uses bulk_update.
    """
    if connection.vendor != "postgresql":
        Enrollment.objects.bulk_update(enrollments, [*_ENROLLMENT_FIELDS, "claim_token"])
        return
    table = connection.ops.quote_name(Enrollment._meta.db_table)
    ids = [e.pk for e in enrollments]
    columns = [
        ids,
        [e.status for e in enrollments],
        [e.current_step for e in enrollments],
        [e.run for e in enrollments],
        [e.next_due_at for e in enrollments],
        [e.exited_at for e in enrollments],
        [e.exit_reason for e in enrollments],
        [e.claimed_at for e in enrollments],
    ]
    token = enrollments[0].claim_token
    # Identifiers come from the model's metadata; every value is a bound parameter.
    sql = (
        f"UPDATE {table} AS e SET status = v.status, current_step = v.current_step, run = v.run, "  # noqa: S608
        "next_due_at = v.next_due_at, exited_at = v.exited_at, exit_reason = v.exit_reason, "
        "claimed_at = v.claimed_at, claim_token = %s "
        "FROM unnest(%s::bigint[], %s::varchar[], %s::smallint[], %s::integer[], %s::timestamptz[], "
        "%s::timestamptz[], %s::varchar[], %s::timestamptz[]) "
        "AS v(id, status, current_step, run, next_due_at, exited_at, exit_reason, claimed_at) "
        "WHERE e.id = v.id AND e.id = ANY(%s::bigint[])"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [token, *columns, ids])


def _claim_sends(*, execution_ids: list[int] | None, limit: int, now: datetime) -> list[int]:
    """Flip pending executions to "sending" (compare-and-swap) and return the ids this caller flipped."""
    stale_at = now + timedelta(seconds=nurture_setting("STALE_SENDING_SECONDS"))
    if execution_ids is not None and connection.vendor == "postgresql":
        if not execution_ids:
            return []
        # The lock-and-flip below in one statement: rows another caller holds are skipped (it flips
        # them), and a row already flipped fails the state check once its lock is taken.
        table = connection.ops.quote_name(StepExecution._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH claimed AS (SELECT id FROM {table} WHERE id = ANY(%s) AND state = %s "  # noqa: S608
                "ORDER BY id FOR UPDATE SKIP LOCKED) "
                f"UPDATE {table} AS x SET state = %s, attempts = x.attempts + 1, next_attempt_at = %s "
                "FROM claimed WHERE x.id = claimed.id RETURNING x.id",
                [list(execution_ids), ExecutionState.PENDING, ExecutionState.SENDING, stale_at],
            )
            return [row[0] for row in cursor.fetchall()]
    with transaction.atomic():
        pending = StepExecution.objects.select_for_update(skip_locked=True).filter(state=ExecutionState.PENDING)
        if execution_ids is not None:
            pending = pending.filter(pk__in=execution_ids)
        else:
            pending = pending.filter(next_attempt_at__lte=now).order_by("next_attempt_at")[:limit]
        ids = list(pending.values_list("pk", flat=True))
        if ids:
            StepExecution.objects.filter(pk__in=ids, state=ExecutionState.PENDING).update(
                state=ExecutionState.SENDING, attempts=F("attempts") + 1, next_attempt_at=stale_at
            )
        return ids


def _sent_mark(*, execution_ids: list[int], message_ids: list[int], now: datetime) -> None:
    """Executions sent, their messages' sent_at: one statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        StepExecution.objects.filter(pk__in=execution_ids).update(
            state=ExecutionState.SENT, finished_at=now, next_attempt_at=None, error=""
        )
        Message.objects.filter(pk__in=message_ids).update(sent_at=now)
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH sent AS (UPDATE {quote(StepExecution._meta.db_table)} "  # noqa: S608
            "SET state = %s, finished_at = %s, next_attempt_at = NULL, error = '' WHERE id = ANY(%s)) "
            f"UPDATE {quote(Message._meta.db_table)} SET sent_at = %s WHERE id = ANY(%s)",
            [ExecutionState.SENT, now, execution_ids, now, message_ids],
        )


def _enrollments_analyze() -> None:
    """ANALYZE the enrolment table after a bulk enrolment (PostgreSQL; a sample, ~0.1 s at any size).

    The executor claims ``ORDER BY next_due_at LIMIT n FOR UPDATE SKIP LOCKED``. Planned on stale
    statistics (autovacuum off, or not yet run after a large segment), that query believes a few due
    rows exist, reads and sorts all of them — and their leads — on every batch: half a second per
    claim with 100k due enrolments instead of a few milliseconds on the due index. SQLite: nothing.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Enrollment._meta.db_table)}")


def _leads_tagged(leads: QuerySet, value) -> QuerySet:
    """The leads among ``leads`` whose tags include ``value``: jsonb containment on PostgreSQL.
    Tags are stored lower-cased and trimmed, so ``value`` is compared the same way."""
    if isinstance(value, str):
        value = " ".join(value.split()).lower()
    if connection.vendor == "postgresql":
        return leads.filter(tags__contains=[value])
    # SQLite has no JSON containment; match the stored JSON text
    return leads.filter(tags__icontains=f'"{value}"')

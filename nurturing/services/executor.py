"""The executor: due enrolments → executed steps → delivered messages, set-based.

``process_due_steps`` runs in three short phases so that no network call ever
happens inside a transaction and every step runs exactly once:

1. **Claim and plan** (one transaction): lock up to ``batch_size`` due active
   enrolments with ``SELECT … FOR UPDATE SKIP LOCKED`` (a second worker takes
   the next ones), walk each through its steps (waits, branches and actions run
   here; a message step is rendered), bulk-insert one ``StepExecution`` per
   executed step — unique per (enrolment, run) — and the ``Message`` rows, and
   move the enrolments on. Committed before anything is sent.
2. **Claim the sends** (one short transaction): pending → sending, compare-and-swap.
   Only the caller that flips a row sends it.
3. **Send, then record** (outside, then one transaction): hand the messages to
   the email / SMS backend, then mark them sent, store ``email_sent``/``sms_sent``
   interactions in bulk, schedule transient failures for a retry with backoff.

A crash after (1) leaves pending executions that the sweeper
(:func:`deliver_pending`) sends after a lease; a retried task or a duplicate
tick finds the enrolments already moved on and the executions no longer pending.
"""

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter

from django.contrib.auth import get_user_model
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import Count, F, Min, Model
from django.utils import timezone

from leadfunnel.errors import DomainError
from leadfunnel.models import LeadAssignment
from leadfunnel.outbox import outbox_publish
from leads.models import Interaction, Lead, Stage, TransitionCause
from leads.services import Reassignment, lead_change_stage, leads_assign

from ..channels import email_build, provider_error, sms_backend_get
from ..conditions import condition_kind, interaction_matches, lead_matches
from ..conf import nurture_setting
from ..models import (
    Enrollment,
    EnrollmentStatus,
    ExecutionState,
    ExitReason,
    Message,
    Sequence,
    Step,
    StepExecution,
    StepKind,
)
from ..rendering import compile_template, merge_context, render_email, render_sms
from ..tracking import tracking_url
from .enrollment import HANDOFF_STAGES, enrollments_exit
from .interactions import interactions_record_many
from .schedule import wait_until, window_next_open, zone_for

logger = logging.getLogger(__name__)

# A walk through branches/actions stops after this many steps in one pass (save-time
# validation already rejects loops without a wait; this is the belt to those braces).
MAX_HOPS = 50
DAY = timedelta(hours=24)


@dataclass(slots=True, eq=False)
class _Execution:
    """A StepExecution row planned in this batch (a plain object: a batch writes a thousand)."""

    enrollment_id: int
    sequence_id: int
    step_id: int
    position: int
    run: int
    kind: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    next_attempt_at: datetime | None
    detail: dict
    error: str = ""
    attempts: int = 0
    pk: int | None = None


@dataclass(slots=True, eq=False)
class _Outgoing:
    """A Message row planned in this batch, with what sending it needs (its lead, its execution,
    the unsubscribe URL already signed for the body, reused for the List-Unsubscribe header)."""

    execution: _Execution | None
    lead: Lead
    sequence_id: int
    position: int
    purpose: str
    channel: str
    to: str
    subject: str
    body: str
    text_body: str
    links: list[str]
    token: str
    created_at: datetime
    unsubscribe_url: str | None = None
    pk: int | None = None

    @property
    def lead_id(self) -> int:
        return self.lead.pk

    @property
    def execution_id(self) -> int | None:
        return self.execution.pk if self.execution is not None else None


@dataclass
class _Batch:
    now: datetime
    claim_token: str
    sequences: dict[int, Sequence]
    steps: dict[int, dict[int, Step]]
    sent_today: dict[int, tuple[int, datetime]]
    lease: timedelta = timedelta(seconds=120)
    default_cap: int = 0
    executions: list[_Execution] = field(default_factory=list)
    messages: list[_Outgoing] = field(default_factory=list)
    contexts: dict[int, dict[str, str]] = field(default_factory=dict)


def process_due_steps(*, batch_size: int | None = None, now: datetime | None = None) -> int:
    """Execute the steps of up to ``batch_size`` due enrolments and deliver their messages.

    Returns how many steps were executed (StepExecution rows written). Safe to
    call from any number of processes at once. Benchmark entry point.
    """
    executed, planned = _plan_batch(batch_size=batch_size or nurture_setting("BATCH_SIZE"), now=now)
    if planned:
        deliver_executions(planned=planned)
    return executed


def due_count(*, now: datetime | None = None, limit: int = 100_000) -> int:
    now = now or timezone.now()
    return Enrollment.objects.filter(status=EnrollmentStatus.ACTIVE, next_due_at__lte=now).values("pk")[:limit].count()


# --- phase 1: claim and plan --------------------------------------------------------------


def _plan_batch(*, batch_size: int, now: datetime | None) -> tuple[int, list[_Outgoing]]:
    with transaction.atomic():
        now = now or timezone.now()
        enrollments = list(
            Enrollment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=EnrollmentStatus.ACTIVE, next_due_at__lte=now)
            .select_related("lead", "lead__company", "lead__owner")
            .order_by("next_due_at")[:batch_size]
        )
        if not enrollments:
            return 0, []
        sequence_ids = {e.sequence_id for e in enrollments}
        steps: dict[int, dict[int, Step]] = defaultdict(dict)
        for step in Step.objects.filter(sequence_id__in=sequence_ids):
            steps[step.sequence_id][step.position] = step
        sent_today = {
            row["lead_id"]: (row["n"], row["first"])
            for row in Message.objects.filter(
                lead_id__in={e.lead_id for e in enrollments},
                purpose=Message.Purpose.NURTURE,
                created_at__gt=now - DAY,
            )
            .values("lead_id")
            .annotate(n=Count("pk"), first=Min("created_at"))
        }
        batch = _Batch(
            now=now,
            claim_token=secrets.token_hex(8),
            sequences={s.pk: s for s in Sequence.objects.filter(pk__in=sequence_ids)},
            steps=steps,
            sent_today=sent_today,
            lease=timedelta(seconds=nurture_setting("SEND_LEASE_SECONDS")),
            default_cap=nurture_setting("MAX_MESSAGES_PER_DAY"),
        )
        for enrollment in enrollments:
            _advance(enrollment, batch)

        _executions_insert(batch.executions)
        _messages_insert(batch.messages)
        _enrollments_save(enrollments)
        return len(batch.executions), batch.messages


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


def _exit_reason(lead: Lead, sequence: Sequence) -> str | None:
    if lead.stage == Stage.DISQUALIFIED:
        return ExitReason.DISQUALIFIED
    if lead.unsubscribed_at is not None:
        return ExitReason.UNSUBSCRIBED
    if lead.email_bounced_at is not None:
        return ExitReason.BOUNCED
    if sequence.stop_on_handoff and lead.stage in HANDOFF_STAGES:
        trigger = sequence.enroll_on or {}
        if not (trigger.get("kind") == "stage_entered" and trigger.get("stage") == lead.stage):
            return ExitReason.HANDOFF
    return None


def _end(enrollment: Enrollment, *, status: str, reason: str, now: datetime) -> None:
    enrollment.status = status
    enrollment.exit_reason = reason
    enrollment.exited_at = now
    enrollment.next_due_at = None


def _record(
    enrollment: Enrollment, step: Step, batch: _Batch, *, state: str, detail: dict | None = None, error: str = ""
) -> _Execution:
    enrollment.run += 1
    execution = _Execution(
        enrollment_id=enrollment.pk,
        sequence_id=enrollment.sequence_id,
        step_id=step.pk,
        position=step.position,
        run=enrollment.run,
        kind=step.kind,
        state=state,
        created_at=batch.now,
        finished_at=None if state == ExecutionState.PENDING else batch.now,
        next_attempt_at=batch.now + batch.lease if state == ExecutionState.PENDING else None,
        detail=detail or {},
        error=error,
    )
    batch.executions.append(execution)
    return execution


def _advance(enrollment: Enrollment, batch: _Batch) -> None:
    now = batch.now
    lead = enrollment.lead
    sequence = batch.sequences[enrollment.sequence_id]
    steps = batch.steps[sequence.pk]
    enrollment.claimed_at = now
    enrollment.claim_token = batch.claim_token
    if not sequence.active:
        enrollment.next_due_at = None  # paused; activation resumes it
        return
    sent_this_pass = False
    for _ in range(MAX_HOPS):
        reason = _exit_reason(lead, sequence)
        if reason:
            _end(enrollment, status=EnrollmentStatus.EXITED, reason=reason, now=now)
            return
        step = steps.get(enrollment.current_step)
        if step is None:
            _end(enrollment, status=EnrollmentStatus.COMPLETED, reason="", now=now)
            return
        config = step.config
        if step.kind in (StepKind.EMAIL, StepKind.SMS):
            if sent_this_pass:
                enrollment.next_due_at = now  # at most one message per enrolment per pass
                return
            zone = zone_for(lead.time_zone)
            opens_at = window_next_open(
                start=sequence.send_window_start,
                end=sequence.send_window_end,
                days=sequence.send_days,
                now=now,
                zone=zone,
            )
            if opens_at is not None:
                enrollment.next_due_at = opens_at
                return
            cap = sequence.max_messages_per_day
            if cap is None:
                cap = batch.default_cap
            count, first_at = batch.sent_today.get(lead.pk, (0, now))
            if cap and count >= cap:
                enrollment.next_due_at = first_at + DAY + timedelta(seconds=1)
                return
            if step.kind == StepKind.SMS and not lead.phone:
                _record(enrollment, step, batch, state=ExecutionState.SKIPPED, detail={"reason": "no phone number"})
                enrollment.current_step += 1
                continue
            execution = _record(enrollment, step, batch, state=ExecutionState.PENDING)
            batch.messages.append(_message_build(step, lead, sequence, batch, execution))
            batch.sent_today[lead.pk] = (count + 1, first_at)
            sent_this_pass = True
            enrollment.current_step += 1
            enrollment.next_due_at = now
            continue
        if step.kind == StepKind.WAIT:
            _record(enrollment, step, batch, state=ExecutionState.DONE)
            enrollment.current_step += 1
            enrollment.next_due_at = wait_until(config, now=now, zone=zone_for(lead.time_zone))
            return
        if step.kind == StepKind.BRANCH:
            taken = _branch_taken(config["condition"], lead, enrollment)
            _record(enrollment, step, batch, state=ExecutionState.DONE, detail={"taken": taken})
            enrollment.current_step = config["goto"] if taken else config.get("else_goto", step.position + 1)
            continue
        if step.kind == StepKind.ACTION:
            _action_run(step, enrollment, lead, sequence, batch)
            enrollment.current_step += 1
            continue
        enrollment.current_step += 1  # unknown kind (cannot be saved): skip it
    enrollment.next_due_at = now + timedelta(minutes=1)


def _branch_taken(condition: dict, lead: Lead, enrollment: Enrollment) -> bool:
    if condition_kind(condition) != "interaction":
        return lead_matches(condition, lead)
    # "Did X since enrolment": one indexed query (lead, -occurred_at) per branch evaluation.
    rows = Interaction.objects.filter(
        lead_id=lead.pk, type=condition["interaction_type"], occurred_at__gte=enrollment.enrolled_at
    ).values_list("properties", flat=True)[:500]
    return any(interaction_matches(condition, condition["interaction_type"], props) for props in rows)


def _context(lead: Lead, batch: _Batch) -> dict[str, str]:
    context = batch.contexts.get(lead.pk)
    if context is None:
        context = batch.contexts[lead.pk] = merge_context(lead)
    return context


def _message_build(step: Step, lead: Lead, sequence: Sequence, batch: _Batch, execution: _Execution) -> _Outgoing:
    token = secrets.token_urlsafe(12)
    context = _context(lead, batch)
    common = {
        "execution": execution,
        "lead": lead,
        "sequence_id": sequence.pk,
        "position": step.position,
        "purpose": Message.Purpose.NURTURE,
        "token": token,
        "created_at": batch.now,
    }
    if step.kind == StepKind.SMS:
        return _Outgoing(
            channel="sms",
            to=lead.phone,
            subject="",
            body=render_sms(body=step.config["body"], context=context),
            text_body="",
            links=[],
            **common,
        )
    unsubscribe_url = tracking_url(token, "u")
    rendered = render_email(
        subject=step.config["subject"],
        body=step.config["body"],
        context=context,
        click_url=lambda index: tracking_url(token, "c", index),
        open_url=tracking_url(token, "o"),
        unsubscribe_url=unsubscribe_url,
    )
    return _Outgoing(
        channel="email",
        to=lead.email,
        subject=rendered.subject,
        body=rendered.html,
        text_body=rendered.text,
        links=rendered.links,
        unsubscribe_url=unsubscribe_url,
        **common,
    )


def _action_run(step: Step, enrollment: Enrollment, lead: Lead, sequence: Sequence, batch: _Batch) -> None:
    config = step.config
    action = config.get("action")
    try:
        with transaction.atomic():  # a failing action rolls back alone, the batch goes on
            detail = _ACTIONS[action](config, enrollment, lead, sequence, step, batch)
    except DomainError as exc:
        _record(enrollment, step, batch, state=ExecutionState.FAILED, error=exc.message, detail={"action": action})
        return
    if isinstance(detail, tuple):  # notify_owner: a message to deliver
        execution = _record(enrollment, step, batch, state=ExecutionState.PENDING, detail={"action": action})
        message = detail[1]
        message.execution = execution
        batch.messages.append(message)
        return
    state = ExecutionState.SKIPPED if detail.get("skipped") else ExecutionState.DONE
    _record(enrollment, step, batch, state=state, detail={"action": action, **detail})


def _action_set_stage(config, enrollment, lead, sequence, step, batch) -> dict:
    if lead.stage == config["stage"]:
        return {"skipped": "already in that stage"}
    lead_change_stage(
        lead=lead,
        to_stage=config["stage"],
        cause=TransitionCause.SEQUENCE,
        cause_ref=f"sequence:{sequence.pk}",
        reason=f"Sequence “{sequence.name}”, step {step.position}",
        details={"enrollment_id": enrollment.pk, "step": step.position},
    )
    return {"stage": config["stage"]}


def _action_notify_owner(config, enrollment, lead, sequence, step, batch):
    owner = lead.owner
    if owner is None or not owner.email:
        return {"skipped": "the lead has no owner with an email address"}
    context = _context(lead, batch)
    subject = compile_template(config.get("subject") or "{{ lead.full_name }} ({{ lead.email }}) needs you").render(
        context, escape=False
    )
    body = compile_template(
        config.get("body") or f"{{{{ lead.full_name }}}} reached step {step.position} of “{sequence.name}”."
    ).render(context, escape=False)
    message = _Outgoing(
        execution=None,  # set by _action_run once the execution is recorded
        lead=lead,
        sequence_id=sequence.pk,
        position=step.position,
        purpose=Message.Purpose.NOTIFICATION,
        channel="email",
        to=owner.email,
        subject=subject[:300],
        body=f"<p>{body}</p>",
        text_body=body,
        links=[],
        token=secrets.token_urlsafe(12),
        created_at=batch.now,
    )
    return ("message", message)


def _action_assign(config, enrollment, lead, sequence, step, batch) -> dict:
    """Give the lead to a rep (a chosen one, or the round-robin) through the one assignment rule:
    SLA deadline, ownership history, round-robin advanced, the rep told."""
    owner_id = config.get("owner", "round_robin")
    if owner_id == "round_robin":
        owner_id = None
    elif not get_user_model().objects.filter(pk=owner_id, is_active=True).exists():
        return {"skipped": "that user no longer exists"}
    assigned = leads_assign(
        reassignments=[
            Reassignment(lead_id=lead.pk, owner_id=owner_id, reason=f"Sequence “{sequence.name}”, step {step.position}")
        ],
        cause=LeadAssignment.Cause.SEQUENCE,
        # The clock, not the batch's instant: the round-robin orders reps by when they were given a lead.
        now=None,
    )
    assignment = assigned.get(lead.pk)
    if assignment is None:
        return {"skipped": "no sales rep available"}
    lead.owner_id = assignment.to_owner_id
    return {"owner_id": assignment.to_owner_id, "assignment_id": assignment.pk}


def _action_tag(config, enrollment, lead, sequence, step, batch) -> dict:
    remove = {t.strip() for t in config.get("remove", [])}
    tags = [t for t in (lead.tags or []) if t not in remove]
    tags += [t.strip() for t in config.get("add", []) if t.strip() not in tags]
    Lead.objects.filter(pk=lead.pk).update(tags=tags)
    lead.tags = tags
    return {"tags": tags}


def _action_webhook(config, enrollment, lead, sequence, step, batch) -> dict:
    outbox_publish(
        topic="sequence.webhook",
        payload={
            "enrollment_id": enrollment.pk,
            "sequence_id": sequence.pk,
            "lead_id": lead.pk,
            "step": step.position,
            "event": config.get("event", "sequence.step"),
            "url": config.get("url"),
            "at": batch.now.isoformat(),
        },
    )
    return {"event": config.get("event", "sequence.step")}


_ACTIONS = {
    "set_stage": _action_set_stage,
    "notify_owner": _action_notify_owner,
    "assign": _action_assign,
    "tag": _action_tag,
    "webhook": _action_webhook,
}


# --- phases 2 and 3: deliver ---------------------------------------------------------------


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


def deliver_executions(
    *, execution_ids: list[int] | None = None, planned: list[_Outgoing] | None = None, limit: int = 500
) -> int:
    """Send the messages of pending executions: the ones just ``planned`` (in memory, with their
    lead and execution), these ids, or any whose lease/backoff is over.

    Returns how many were sent. Exactly one caller flips an execution to
    "sending", so only that caller hands it to the provider.
    """
    now = timezone.now()
    if planned is not None:
        execution_ids = [m.execution_id for m in planned]
    ids = _claim_sends(execution_ids=execution_ids, limit=limit, now=now)
    if not ids:
        return 0
    messages: list[_Outgoing] | list[Message]
    if planned is not None:
        claimed = set(ids)
        messages = [m for m in planned if m.execution_id in claimed]
        for message in messages:
            message.execution.attempts += 1  # as the claim did in the database
    else:
        messages = list(
            Message.objects.filter(execution_id__in=ids).select_related("lead", "execution").order_by("execution_id")
        )
    sent: list = []
    skipped: list = []
    failed: list[tuple] = []
    connection = None
    sms = None
    from_email = nurture_setting("FROM_EMAIL")
    try:
        for message in messages:
            lead = message.lead
            if message.purpose == Message.Purpose.NURTURE and (lead.unsubscribed_at or lead.email_bounced_at):
                skipped.append(message)
                continue
            try:
                if message.channel == "email":
                    if connection is None:
                        connection = get_connection(fail_silently=False)
                        connection.open()
                    # One message per call: a provider error belongs to that message alone.
                    email_build(
                        message=message,
                        connection=connection,
                        from_email=from_email,
                        unsubscribe_url=getattr(message, "unsubscribe_url", None),
                    ).send()
                else:
                    sms = sms or sms_backend_get()
                    sms.send(to=message.to, body=message.body, reference=message.token)
            except Exception as exc:  # any provider failure is classified, never lost
                failed.append((message, exc))
            else:
                sent.append(message)
    finally:
        if connection is not None:
            try:
                connection.close()
            except Exception:
                logger.warning("closing the email connection failed", exc_info=True)
    _deliveries_record(sent=sent, skipped=skipped, failed=failed, now=timezone.now())
    return len(sent)


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


@transaction.atomic
def _deliveries_record(*, sent: list, skipped: list, failed: list[tuple], now: datetime) -> None:
    """Store the outcome of a delivery pass. ``sent``/``skipped``/``failed`` hold Message rows or
    the messages planned in memory (the same attributes)."""
    if sent:
        _sent_mark(execution_ids=[m.execution_id for m in sent], message_ids=[m.pk for m in sent], now=now)
        at = now.isoformat()
        interactions_record_many(
            events=[
                {
                    "lead": m.lead_id,
                    "type": f"{m.channel}_sent",
                    "occurred_at": at,
                    "properties": {
                        "sequence_id": m.sequence_id,
                        "step": m.position,
                        "message_id": m.pk,
                        "subject": m.subject,
                    },
                }
                for m in sent
                if m.purpose == Message.Purpose.NURTURE
            ]
        )
    if skipped:
        StepExecution.objects.filter(pk__in=[m.execution_id for m in skipped]).update(
            state=ExecutionState.SKIPPED, finished_at=now, next_attempt_at=None, error="lead no longer reachable"
        )
    retry: list[StepExecution] = []
    bounced_leads: set[int] = set()
    for message, exc in failed:
        error = provider_error(exc)
        execution = message.execution
        attempts = execution.attempts  # loaded (or counted) after the claim incremented it
        row = StepExecution(pk=execution.pk, error=str(error)[:2000])
        if error.permanent or attempts >= nurture_setting("MAX_ATTEMPTS"):
            row.state = ExecutionState.FAILED
            row.finished_at = now
            row.next_attempt_at = None
            if error.bounce and message.purpose == Message.Purpose.NURTURE:
                bounced_leads.add(message.lead_id)
        else:
            row.state = ExecutionState.PENDING
            row.finished_at = None
            delay = nurture_setting("RETRY_BASE_SECONDS") * 2 ** (attempts - 1)
            row.next_attempt_at = now + timedelta(seconds=delay)
        retry.append(row)
        logger.warning("nurture send %s failed (%s): %s", execution.pk, row.state, error)
    if retry:
        StepExecution.objects.bulk_update(retry, ["state", "error", "finished_at", "next_attempt_at"])
    if bounced_leads:
        _bounces_record(lead_ids=bounced_leads, now=now)


def _bounces_record(*, lead_ids: set[int], now: datetime) -> None:
    Lead.objects.filter(pk__in=lead_ids, email_bounced_at__isnull=True).update(email_bounced_at=now)
    at = now.isoformat()
    interactions_record_many(
        events=[{"lead": lead_id, "type": "email_bounce", "occurred_at": at, "properties": {}} for lead_id in lead_ids]
    )
    enrollments_exit(lead_ids=lead_ids, reason=ExitReason.BOUNCED, now=now)


def deliver_pending(*, limit: int = 500) -> dict:
    """Sweeper: retries due, sends abandoned by a crashed executor, and stale in-flight sends."""
    now = timezone.now()
    # A send still "sending" long after its claim lost its worker during the provider call.
    # Whether the provider took it is unknown; resending could duplicate it, so it is failed
    # loudly instead (at most once, never twice).
    stale = StepExecution.objects.filter(state=ExecutionState.SENDING, next_attempt_at__lte=now).update(
        state=ExecutionState.FAILED,
        finished_at=now,
        next_attempt_at=None,
        error="The worker stopped during the provider call; not resent to avoid a duplicate.",
    )
    sent = 0
    while True:
        done = deliver_executions(limit=limit)
        sent += done
        if done < limit:
            break
    return {"sent": sent, "stale": stale}

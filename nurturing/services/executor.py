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

Where the parts live: :mod:`.planning` walks the steps (:mod:`.actions` runs the action steps),
:mod:`.batch` holds what a pass plans in memory, :mod:`.statements` the set-based SQL, and
:mod:`.delivery` the sends, their outcome and the sweeper. This module claims a batch and is the
face: import the executor's functions from here or from :mod:`nurturing.services`.
"""

import secrets
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from leads.consent import marketing_refusals

from ..conf import nurture_setting
from ..models import Enrollment, EnrollmentStatus, Message, Sequence, Step
from .abtest import ab_states_load
from .batch import DAY, _Batch, _Outgoing
from .delivery import deliver_executions, deliver_pending, skips_record
from .planning import _advance
from .statements import _claim_sends as _claim_sends  # kept importable here: tests claim sends through it
from .statements import _enrollments_save, _executions_insert, _messages_insert

__all__ = ["deliver_executions", "deliver_pending", "due_count", "process_due_steps"]


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
    skipped: list[dict] = []
    planned = _claim_and_plan(batch_size=batch_size, now=now, skipped=skipped)
    # After the claim committed, like the sends: the messages not sent, on the leads' timelines.
    skips_record(events=skipped)
    return planned


def _claim_and_plan(*, batch_size: int, now: datetime | None, skipped: list[dict]) -> tuple[int, list[_Outgoing]]:
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
        all_steps = list(Step.objects.filter(sequence_id__in=sequence_ids))
        for step in all_steps:
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
            # Consent and the suppression list, for the whole batch: one query.
            refusals=marketing_refusals({e.lead_id: e.lead for e in enrollments}.values()),
            ab=ab_states_load(steps=all_steps, now=now),
        )
        for enrollment in enrollments:
            _advance(enrollment, batch)

        _executions_insert(batch.executions)
        _messages_insert(batch.messages)
        _enrollments_save(enrollments)
        skipped += batch.skipped_events
        return len(batch.executions), batch.messages

"""Planning: walking each claimed enrolment through its steps, inside the claim's transaction.

Waits, branches and actions run here; a message step is rendered into a planned message (its
tracking links signed) but never sent, so a batch commits its plan before any provider call.
The exit checks, the send window and the daily cap decide when an enrolment is due next.
"""

import secrets
from datetime import datetime, timedelta

from leads.consent import SUPPRESSED
from leads.models import Interaction, InteractionType, Lead, Stage

from ..abtest import variant_for
from ..conditions import condition_kind, interaction_matches, lead_matches
from ..models import (
    MESSAGE_KINDS,
    Enrollment,
    EnrollmentStatus,
    ExecutionState,
    ExitReason,
    Message,
    Sequence,
    Step,
    StepKind,
)
from ..rendering import render_email, render_sms
from ..tracking import tracking_url
from .abtest import RECHECK
from .actions import _action_run
from .batch import DAY, _Batch, _context, _Execution, _Outgoing, _record
from .enrollment import HANDOFF_STAGES
from .schedule import wait_until, window_next_open, zone_for

# A walk through branches/actions stops after this many steps in one pass (save-time
# validation already rejects loops without a wait; this is the belt to those braces).
MAX_HOPS = 50


def _exit_reason(lead: Lead, sequence: Sequence) -> str | None:
    if lead.erased_at is not None:
        return ExitReason.ERASED
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
        if step.kind in MESSAGE_KINDS:
            if sent_this_pass:
                enrollment.next_due_at = now  # at most one message per enrolment per pass
                return
            refusal = batch.refusals.get(lead.pk)
            if refusal and not (refusal == SUPPRESSED and step.kind == StepKind.SMS):
                # Never sent: no consent for marketing, or a suppressed address. The sequence goes on.
                _skip_message(enrollment, step, sequence, batch, reason=refusal)
                enrollment.current_step += 1
                continue
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
            variant = ""
            test = batch.ab.get(step.pk)
            if test is not None:
                if test.winner:
                    variant = test.winner
                elif test.slots > 0:
                    test.slots -= 1
                    variant = variant_for(enrollment_id=enrollment.pk, step_id=step.pk, split=test.split)
                else:
                    enrollment.next_due_at = now + RECHECK  # the test group is out; wait for its winner
                    return
            execution = _record(enrollment, step, batch, state=ExecutionState.PENDING)
            batch.messages.append(_message_build(step, lead, sequence, batch, execution, variant=variant))
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


def _skip_message(enrollment: Enrollment, step: Step, sequence: Sequence, batch: _Batch, *, reason: str) -> None:
    _record(enrollment, step, batch, state=ExecutionState.SKIPPED, detail={"reason": reason})
    batch.skipped_events.append(
        {
            "lead": enrollment.lead_id,
            "type": InteractionType.MESSAGE_SKIPPED,
            "occurred_at": batch.now.isoformat(),
            "properties": {
                "channel": step.kind,
                "sequence_id": sequence.pk,
                "sequence": sequence.name,
                "step": step.position,
                "reason": reason,
            },
        }
    )


def _branch_taken(condition: dict, lead: Lead, enrollment: Enrollment) -> bool:
    if condition_kind(condition) != "interaction":
        return lead_matches(condition, lead)
    # "Did X since enrolment": one indexed query (lead, -occurred_at) per branch evaluation.
    rows = Interaction.objects.filter(
        lead_id=lead.pk, type=condition["interaction_type"], occurred_at__gte=enrollment.enrolled_at
    ).values_list("properties", flat=True)[:500]
    return any(interaction_matches(condition, condition["interaction_type"], props) for props in rows)


def _message_build(
    step: Step, lead: Lead, sequence: Sequence, batch: _Batch, execution: _Execution, *, variant: str = ""
) -> _Outgoing:
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
        subject=step.config["subject_b" if variant == "b" else "subject"],
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
        variant=variant,
        **common,
    )

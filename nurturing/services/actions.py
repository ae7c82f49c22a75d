"""A sequence's action steps (set a stage, notify the owner, assign a rep, tag, webhook).

Each runs inside the planning transaction in a savepoint of its own, so a failing action is
recorded and rolled back alone while the batch goes on; the writes go through the leads app's
services (the one stage change, the one assignment rule) and the outbox, never around them.
"""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from leadfunnel.errors import DomainError
from leadfunnel.models import LeadAssignment
from leadfunnel.outbox import outbox_publish
from leads.intake import MAX_TAG_LENGTH
from leads.models import Lead, TransitionCause
from leads.services import Reassignment, lead_change_stage, leads_assign

from ..models import Enrollment, ExecutionState, Message, Sequence, Step
from ..rendering import compile_template, text_to_html
from .batch import _Batch, _context, _Outgoing, _record


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
        # Plain text to HTML like a plain-text email (escaped, paragraphs, links), not tracked: it goes to a rep.
        body=text_to_html(body, lambda url: url),
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
    # Tags are stored normalised (trimmed, lower-case), as every other writer of tags stores them.
    remove = {_tag(t) for t in config.get("remove", [])}
    tags = [t for t in (lead.tags or []) if t not in remove]
    tags += [t for t in dict.fromkeys(_tag(t) for t in config.get("add", [])) if t and t not in tags]
    tags = sorted(tags)
    Lead.objects.filter(pk=lead.pk).update(tags=tags)
    lead.tags = tags
    return {"tags": tags}


def _tag(value) -> str:
    return " ".join(str(value).split()).lower()[:MAX_TAG_LENGTH]


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

"""Delivery: handing claimed messages to the email / SMS provider, then recording the outcome.

The provider is called outside any transaction and only by the caller whose claim flipped the
execution, so a message goes out at most once; transient failures come back with a backoff,
permanent ones and bounces stop there (a bounce exits the lead's enrolments). The sweeper sends
what a crashed executor left pending and fails, never resends, a send whose worker died mid-call.
"""

import logging
from datetime import datetime, timedelta

from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from leads.consent import SUPPRESSED, marketing_refusals
from leads.models import InteractionType, Lead, SuppressionReason
from leads.services import suppression_add

from ..channels import email_build, provider_error, provider_message_id, sms_backend_get
from ..conf import nurture_setting
from ..models import ExecutionState, ExitReason, Message, StepExecution
from .batch import _Outgoing
from .enrollment import enrollments_exit
from .interactions import interactions_record_many
from .statements import _claim_sends, _sent_mark

logger = logging.getLogger(__name__)


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
    # Consent and the suppression list (one query) bind every marketing send: the planner checked
    # the sends it just planned for the whole batch; sends planned in an earlier pass (retries, the
    # sweeper) are checked again here, as consent may have been withdrawn or the address suppressed.
    refusals = (
        {}
        if planned is not None
        else marketing_refusals({m.lead_id: m.lead for m in messages if m.purpose == Message.Purpose.NURTURE}.values())
    )
    sent: list = []
    provider_ids: dict[int, str] = {}
    skipped: list[tuple] = []
    failed: list[tuple] = []
    connection = None
    sms = None
    from_email = nurture_setting("FROM_EMAIL")
    try:
        for message in messages:
            lead = message.lead
            if message.purpose == Message.Purpose.NURTURE:
                refusal = refusals.get(lead.pk)
                if refusal == SUPPRESSED and message.channel != "email":
                    refusal = None
                if lead.unsubscribed_at or lead.email_bounced_at or lead.erased_at:
                    refusal = "unreachable"
                if refusal:
                    skipped.append((message, refusal))
                    continue
            try:
                if message.channel == "email":
                    if connection is None:
                        connection = get_connection(fail_silently=False)
                        connection.open()
                    # One message per call: a provider error belongs to that message alone.
                    email = email_build(
                        message=message,
                        connection=connection,
                        from_email=from_email,
                        unsubscribe_url=getattr(message, "unsubscribe_url", None),
                    )
                    email.send()
                    provider_id = provider_message_id(email)
                    if provider_id:
                        provider_ids[message.pk] = provider_id
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
    _deliveries_record(sent=sent, skipped=skipped, failed=failed, now=timezone.now(), provider_ids=provider_ids)
    return len(sent)


@transaction.atomic
def _deliveries_record(
    *, sent: list, skipped: list, failed: list[tuple], now: datetime, provider_ids: dict[int, str] | None = None
) -> None:
    """Store the outcome of a delivery pass. ``sent``/``skipped``/``failed`` hold Message rows or
    the messages planned in memory (the same attributes); ``provider_ids`` the provider's id of
    each message sent through anymail (its tracking webhooks name the message by it)."""
    if sent:
        _sent_mark(execution_ids=[m.execution_id for m in sent], message_ids=[m.pk for m in sent], now=now)
        if provider_ids:
            Message.objects.bulk_update(
                [Message(pk=pk, provider_message_id=value[:255]) for pk, value in provider_ids.items()],
                ["provider_message_id"],
            )
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
        executions = [
            StepExecution(
                pk=m.execution_id,
                state=ExecutionState.SKIPPED,
                finished_at=now,
                next_attempt_at=None,
                error=_SKIP_ERRORS[reason],
                detail={**(m.execution.detail or {}), "reason": reason},
            )
            for m, reason in skipped
        ]
        StepExecution.objects.bulk_update(executions, ["state", "finished_at", "next_attempt_at", "error", "detail"])
        skips_record(
            events=[_skip_event(message=m, reason=reason, now=now) for m, reason in skipped if reason != "unreachable"]
        )
    retry: list[StepExecution] = []
    bounced_leads: set[int] = set()
    bounced_addresses: set[str] = set()
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
                if message.channel == "email":
                    bounced_addresses.add(message.to)
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
        _bounces_record(lead_ids=bounced_leads, now=now, addresses=bounced_addresses)


_SKIP_ERRORS = {
    "unreachable": "lead no longer reachable",
    "no_consent": "the lead has not given the consent marketing needs",
    "suppressed": "the address is on the suppression list",
}


def _skip_event(*, message, reason: str, now: datetime) -> dict:
    return {
        "lead": message.lead_id,
        "type": InteractionType.MESSAGE_SKIPPED,
        "occurred_at": now.isoformat(),
        "properties": {
            "channel": message.channel,
            "sequence_id": message.sequence_id,
            "step": message.position,
            "message_id": message.pk,
            "reason": reason,
        },
    }


def skips_record(*, events: list[dict]) -> None:
    """Put the marketing messages not sent (no consent, suppressed) on the leads' timelines."""
    interactions_record_many(events=events)


def _bounces_record(*, lead_ids: set[int], now: datetime, addresses: set[str]) -> None:
    """The provider refused these addresses for good: a hard bounce, suppressed from now on."""
    suppression_add(emails=sorted(addresses), reason=SuppressionReason.HARD_BOUNCE)
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

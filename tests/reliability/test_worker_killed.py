"""A real worker killed with SIGKILL in the middle of a nurture batch of text messages: the worker that takes
over sends nothing twice and skips nothing silently."""

import re
import time
from collections import Counter

import pytest

from nurturing.models import Enrollment, Message, StepExecution
from tests.conftest import wait_until
from tests.factories import LeadFactory
from tests.nurturing.helpers import make_sequence

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
]

LEADS = 30
BATCH = 5
# Leases shortened from minutes to a second so the takeover happens within the test.
LEASES = {"NURTURE_STALE_SENDING_SECONDS": "1", "NURTURE_SEND_LEASE_SECONDS": "1"}
SLOW = {"NURTURE_SMS_BACKEND": "tests.reliability.slow_sms.SlowSMSBackend", "SLOW_SMS_SECONDS": "0.15", **LEASES}
TAKEOVER = {**SLOW, "SLOW_SMS_SECONDS": "0"}


def texts(*workers) -> list[str]:
    """Numbers every SMS went to, one entry per SMS, from the workers' logs."""
    return [number for worker in workers for number in re.findall(r"SMS to (\S+) \[", worker.output())]


def test_a_worker_killed_mid_batch_leaves_nothing_sent_twice_or_silently_skipped(live_broker, celery_worker_factory):
    from nurturing import services, tasks

    sequence = make_sequence(steps=[{"kind": "sms", "body": "Hello from LeadFunnel"}])
    leads = [LeadFactory(phone=f"+1555{n:07d}") for n in range(LEADS)]
    services.enrollments_create(sequence=sequence, lead_ids=[lead.pk for lead in leads])

    first = celery_worker_factory(extra_env=SLOW)
    tasks.process_due.apply_async(kwargs={"batch_size": BATCH})
    wait_until(lambda: len(texts(first)) >= 8, timeout=30, message=first.output()[-3000:])
    first.kill()  # SIGKILL: no cleanup, no ack, a batch half-sent
    sent_by_first = texts(first)
    assert len(sent_by_first) < LEADS, "the worker finished before it was killed; slow it down"
    in_flight = StepExecution.objects.filter(state="sending").count()
    assert in_flight >= 1, "the kill did not land inside a batch of sends"

    time.sleep(1.2)  # past the (shortened) send lease and stale-sending window
    second = celery_worker_factory(extra_env=TAKEOVER)
    tasks.deliver_pending.delay()
    tasks.process_due.delay()
    tasks.process_due.delay()  # a duplicate tick on top
    wait_until(
        lambda: (
            not Enrollment.objects.filter(status="active", next_due_at__isnull=False).exists()
            and not StepExecution.objects.filter(state__in=["pending", "sending"]).exists()
        ),
        timeout=60,
        message=second.output()[-3000:],
    )
    tasks.deliver_pending.delay()
    time.sleep(1)

    recipients = Counter(texts(first, second))
    executions = Counter(StepExecution.objects.values_list("enrollment__lead_id", flat=True))
    assert Message.objects.count() == LEADS
    assert set(executions.values()) == {1}, "a step was executed twice"
    assert set(recipients.values()) <= {1}, f"sent twice: {[r for r, n in recipients.items() if n > 1]}"
    states = Counter(StepExecution.objects.values_list("state", flat=True))
    # Every step is accounted for: sent, or failed loudly because its worker died mid-send.
    assert states["sent"] + states["failed"] == LEADS, states
    assert states["failed"] <= BATCH
    for execution in StepExecution.objects.filter(state="failed"):
        assert "worker stopped" in execution.error
    for lead in leads:
        execution = StepExecution.objects.get(enrollment__lead=lead)
        if execution.state == "sent":
            assert recipients[lead.phone] == 1, lead.phone
    print(
        f"\nSIGKILL mid-batch: {len(sent_by_first)} sent before the kill, {in_flight} in flight, "
        f"{states['sent']} sent in all, {states['failed']} failed as unknown, duplicates 0"
    )

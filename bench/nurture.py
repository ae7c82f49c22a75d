"""Nurture executor: due steps per second with one worker process on 100k active enrolments.

    .venv/bin/python bench/nurture.py [--enrollments 100000] [--batch-size 500]

A fresh copy of the seeded data set; one welcome sequence (email with merge fields and a
tracked link, then a wait, then a second email); --enrollments leads enrolled and due now;
then `nurturing.services.process_due_steps(batch_size=…)` is called in this one process,
with Django's locmem email backend, until nothing is due (or --max-seconds passes).
Checks exactly-once: one execution and one message per enrolment, as many emails as messages.
Target: >= 1,000 due steps/s.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drop_db, flush_redis, module_has, record, seeded_db, setup_django

DB = "lf_bench_nurture"
STEPS = [
    {
        "kind": "email",
        "subject": "Welcome, {{ lead.first_name }}",
        "body": '<p>Hi {{ lead.first_name|default:"there" }} from {{ company.name }}!</p>'
        "<p>Here is how teams like yours score leads: "
        '<a href="https://www.leadfunnel.example/blog/lead-scoring-models">read the guide</a>.</p>',
    },
    {"kind": "wait", "days": 2},
    {
        "kind": "email",
        "subject": "Pricing for {{ company.name }}",
        "body": '<p>See <a href="https://www.leadfunnel.example/pricing">pricing</a>.</p>',
    },
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--max-seconds", type=int, default=300)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    name = f"nurture {args.enrollments // 1000}k enrolments"
    setup_django(DB)
    if not module_has("nurturing.services", "process_due_steps"):
        record(name, "NOT RUN: nurturing.services.process_due_steps does not exist yet")
        return 1
    leads = max(args.leads, args.enrollments)
    seeded_db(DB, leads, args.interactions if leads == args.leads else leads * 10)
    flush_redis()

    from django.core import mail
    from django.db import connections
    from django.db.models import Count
    from django.utils import timezone

    from leads.models import Lead
    from nurturing import services
    from nurturing.models import Enrollment, Message, StepExecution

    try:
        sequence = services.sequence_create(data={"name": "Welcome (bench)", "stop_on_handoff": False, "steps": STEPS})
        lead_ids = list(
            Lead.objects.filter(unsubscribed_at__isnull=True, email_bounced_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)[: args.enrollments]
        )
        started = time.monotonic()
        enrolled = []
        for i in range(0, len(lead_ids), 10_000):
            enrolled += services.enrollments_create(
                sequence=sequence, lead_ids=lead_ids[i : i + 10_000], source="bench", now=timezone.now()
            )
        print(f"nurture: {len(enrolled)} enrolments made in {time.monotonic() - started:.1f}s", flush=True)
        mail.outbox = []
        steps = calls = 0
        started = time.monotonic()
        cpu_started = time.process_time()
        deadline = started + args.max_seconds
        while time.monotonic() < deadline:
            done = services.process_due_steps(batch_size=args.batch_size)
            calls += 1
            if not done:
                break
            steps += done
            if calls % 20 == 0:
                rate = steps / (time.monotonic() - started)
                print(f"nurture: {steps} steps, {rate:.0f}/s", flush=True)
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu_started
        finished = time.monotonic() >= deadline
        executions = StepExecution.objects.filter(sequence=sequence).count()
        duplicates = (
            StepExecution.objects.filter(sequence=sequence)
            .values("enrollment_id", "run")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        messages = Message.objects.filter(sequence=sequence).count()
        emails = len(mail.outbox)
        still_due = Enrollment.objects.filter(
            sequence=sequence, status="active", next_due_at__lte=timezone.now()
        ).count()
    finally:
        connections.close_all()
        flush_redis()
        if not args.keep_db:
            drop_db(DB)

    rate = steps / elapsed if elapsed else 0.0
    once = duplicates == 0 and executions == steps and emails == messages
    passed = rate >= 1000 and once and not finished
    record(
        name,
        f"{rate:,.0f} due steps/s (target >= 1,000) | {steps} steps in {elapsed:.1f}s "
        f"(CPU of this process {cpu:.1f}s, {1e6 * cpu / max(steps, 1):.0f} µs per step), {calls} calls of "
        f"process_due_steps(batch_size={args.batch_size}), one process | {len(enrolled)} enrolled, "
        f"{still_due} still due{' (stopped at --max-seconds)' if finished else ''} | executions {executions}, "
        f"duplicate executions {duplicates}, messages {messages}, emails in locmem outbox {emails} | "
        + ("PASS" if passed else "FAIL"),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""seed_demo's leads part: every stage, realistic histories, idempotent."""

import time

import pytest
from django.core.management import call_command

from leads.demo import _ascii
from leads.models import FormSubmission, Interaction, Lead, Opportunity, StageTransition

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_seed_demo_spreads_a_few_hundred_leads_over_every_stage_and_is_idempotent(capsys):
    started = time.monotonic()
    call_command("seed_demo", "--password", "demo-pass-123")
    took = time.monotonic() - started
    counts = {stage: Lead.objects.filter(stage=stage).count() for stage in Lead._meta.get_field("stage").choices and
              [c[0] for c in Lead._meta.get_field("stage").choices]}  # fmt: skip
    assert 180 <= Lead.objects.count() <= 400
    assert all(counts[stage] > 0 for stage in counts), counts
    assert FormSubmission.objects.exists() and Interaction.objects.filter(type="email_sent").exists()
    # Histories: recycled leads that came back are in cycle 2; customers went visitor → mql → sal → sql → customer.
    assert Lead.objects.filter(cycle=2).exists()
    customer = Lead.objects.filter(stage="customer").first()
    path = list(StageTransition.objects.filter(lead=customer).order_by("at", "id").values_list("to_stage", flat=True))
    assert path[-3:] == ["sal", "sql", "customer"] and "mql" in path
    assert Opportunity.objects.filter(status="won").count() == counts["customer"]
    # Each person's address is their own name (Jürgen Müller -> jurgen.muller42@...).
    for first, last, email in Lead.objects.values_list("first_name", "last_name", "email"):
        expected = ".".join(part for part in (_ascii(first), _ascii(last)) if part)
        assert email.split("@")[0].rstrip("0123456789") == expected, (first, last, email)
    # Spread over time, not all "now".
    oldest = StageTransition.objects.order_by("at").first().at
    newest = StageTransition.objects.order_by("-at").first().at
    assert (newest - oldest).days > 30
    before = (Lead.objects.count(), StageTransition.objects.count(), Interaction.objects.count())
    call_command("seed_demo")
    assert (Lead.objects.count(), StageTransition.objects.count(), Interaction.objects.count()) == before
    print(f"seed_demo took {took:.1f}s")

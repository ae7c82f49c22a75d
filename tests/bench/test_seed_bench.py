"""seed_bench loads a consistent, reproducible benchmark data set."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max

from leads.funnel import can_move
from leads.models import Company, FormSubmission, Interaction, Lead, Opportunity, StageTransition

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def seed(*extra: str) -> str:
    out = io.StringIO()
    call_command("seed_bench", "--leads", "300", "--interactions", "2000", "--as-of", "2026-11-01", *extra, stdout=out)
    return out.getvalue()


def snapshot() -> tuple:
    leads = list(
        Lead.objects.order_by("id").values_list(
            "id", "email", "stage", "owner__username", "created_at", "stage_changed_at", "score", "company__domain"
        )
    )
    interactions = list(
        Interaction.objects.values("lead_id", "type")
        .annotate(n=Count("id"), last=Max("occurred_at"))
        .order_by("lead_id", "type")
    )
    transitions = list(
        StageTransition.objects.order_by("id").values_list("lead_id", "from_stage", "to_stage", "at", "cycle")
    )
    return leads, interactions, transitions


def test_seed_bench_loads_the_requested_counts_and_consistent_histories():
    output = seed("--seed", "7")

    assert "300 leads" in output
    assert Lead.objects.count() == 300
    assert Interaction.objects.count() == 2000
    assert Company.objects.exists()
    assert len(set(Lead.objects.values_list("stage", flat=True))) >= 6
    # Every lead's history starts as a visitor, only takes legal moves and ends in its current stage.
    for lead in Lead.objects.prefetch_related("transitions"):
        path = [(t.from_stage, t.to_stage) for t in lead.transitions.all()]
        assert path[0] == ("", "visitor")
        assert all(can_move(a, b) for a, b in path[1:]), path
        assert path[-1][1] == lead.stage
        assert lead.stage_changed_at == lead.transitions.all()[len(path) - 1].at
    # Sales-owned stages have an owner, marketing-owned ones have none; open MQLs have an SLA.
    assert not Lead.objects.filter(stage__in=["mql", "pql", "sal", "sql"], owner__isnull=True).exists()
    assert not Lead.objects.filter(stage__in=["visitor", "recycled", "lost"], owner__isnull=False).exists()
    assert not Lead.objects.filter(stage="mql", sla_due_at__isnull=True).exists()
    assert Opportunity.objects.count() == StageTransition.objects.filter(to_stage="sql").count()
    assert FormSubmission.objects.count() == Lead.objects.filter(first_form__isnull=False).count()
    # New rows get fresh ids after the COPY (sequences moved past the loaded ids).
    assert Lead.objects.create(email="after-seed@example.com").pk == 301


def test_seed_bench_is_reproducible_with_the_same_seed_and_differs_with_another():
    seed("--seed", "3")
    first = snapshot()
    seed("--seed", "3", "--reset")
    assert snapshot() == first
    seed("--seed", "4", "--reset")
    assert snapshot() != first


def test_seed_bench_refuses_a_database_that_already_holds_leads():
    Lead.objects.create(email="someone@example.com")
    with pytest.raises(CommandError, match="--reset"):
        seed()
    assert Lead.objects.count() == 1

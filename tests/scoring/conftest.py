"""Scoring test helpers: a blank model (default rules switched off) and rule/interaction shortcuts."""

import pytest

from leads.models import Interaction
from tests.scoring import funnel


@pytest.fixture
def record():
    """Store interactions for a lead and score them the way the intake does."""

    def record(lead, type_, *, at=None, **properties):
        kwargs = {"lead": lead, "type": type_, "properties": properties}
        if at is not None:
            kwargs["occurred_at"] = at
            kwargs["received_at"] = at
        interaction = Interaction.objects.create(**kwargs)
        funnel.score_interactions(lead=lead, interactions=[interaction])
        return interaction

    return record


@pytest.fixture
def crash_on_batch(monkeypatch):
    """``crash_on_batch(n)``: the n-th recompute batch written fails like a worker lost mid-run;
    returns the real writer (put it back with ``monkeypatch.setattr``)."""
    from scoring.services import recompute

    def arm(n: int):
        original = recompute._write_batch
        calls = {"n": 0}

        def crash(scorers, *, now):
            calls["n"] += 1
            if calls["n"] == n:
                raise RuntimeError("worker lost")
            return original(scorers, now=now)

        monkeypatch.setattr(recompute, "_write_batch", crash)
        return original

    return arm

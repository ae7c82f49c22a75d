"""A/B test of an email step's subject: split, test group, winner by click rate.

An email step with a ``subject_b`` is a test. Each enrolment reaching it gets a variant from a
hash of (enrolment, step) — the same variant however often the step is planned or retried —
with ``ab_split`` percent (default 50) on B. The first ``ab_test_size`` sends (default 100) are
the test group; enrolments after them wait until the winner is known. Once the test group is
out and its last message is ``ab_wait_hours`` old (default 4, time for clicks to come in), the
variant with the higher click rate (clicks / sent; a tie keeps A) wins, is recorded on the step
(``ab_winner``, ``ab_decided_at``) and every later send of the step uses it.

Set-based: while a test is undecided, a batch holding it locks the step rows (so concurrent
workers cannot overfill the test group) and reads the test's counts in one aggregate query; no
per-lead query, nothing extra once decided, and a compare-and-swap update records the winner.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q

from ..abtest import VARIANTS, ab_is_test, ab_settings, winner_by_click_rate
from ..models import Message, Step

# How soon an enrolment held back behind an undecided test looks again.
RECHECK = timedelta(minutes=10)


@dataclass(slots=True)
class AbState:
    """One test in one batch: the test-group places left and the winner, if chosen."""

    split: int
    slots: int
    winner: str


def ab_states_load(*, steps: Iterable[Step], now: datetime) -> dict[int, AbState]:
    """The A/B state of every tested step of a batch (keyed by step id); decides due winners."""
    tests = [step for step in steps if ab_is_test(step)]
    if not tests:
        return {}
    undecided = [step for step in tests if not step.ab_winner]
    counts: dict[tuple[int, int], dict[str, dict]] = defaultdict(dict)
    if undecided:
        # Batches of an undecided test take turns (row lock until the batch commits), so two
        # workers cannot both hand out the last places of the test group; one may have decided.
        winners = dict(
            Step.objects.select_for_update()
            .filter(pk__in=[s.pk for s in undecided])
            .order_by("pk")
            .values_list("pk", "ab_winner")
        )
        for step in undecided:
            step.ab_winner = winners.get(step.pk, "")
        undecided = [step for step in undecided if not step.ab_winner]
    if undecided:
        # This test's messages: of its step position, since the test (re)started.
        scope = Q()
        for step in undecided:
            since = Q(created_at__gte=step.ab_started_at) if step.ab_started_at else Q()
            scope |= Q(sequence_id=step.sequence_id, position=step.position) & since
        for row in (
            Message.objects.filter(scope, purpose=Message.Purpose.NURTURE, variant__in=VARIANTS)
            .values("sequence_id", "position", "variant")
            .annotate(n=Count("pk"), sent=Count("sent_at"), clicked=Count("clicked_at"), last=Max("created_at"))
        ):
            counts[(row["sequence_id"], row["position"])][row["variant"]] = row
    states = {}
    for step in tests:
        split, size, wait_hours = ab_settings(step.config)
        if step.ab_winner:
            states[step.pk] = AbState(split=split, slots=0, winner=step.ab_winner)
            continue
        by_variant = counts.get((step.sequence_id, step.position), {})
        used = sum(row["n"] for row in by_variant.values())
        last = max((row["last"] for row in by_variant.values()), default=None)
        winner = ""
        if used >= size and last is not None and last + timedelta(hours=wait_hours) <= now:
            winner = _decide(step, winner_by_click_rate(by_variant), now)
        states[step.pk] = AbState(split=split, slots=max(0, size - used), winner=winner)
    return states


def _decide(step: Step, winner: str, now: datetime) -> str:
    """Record the winner once (compare-and-swap); a concurrent batch's choice stands."""
    if Step.objects.filter(pk=step.pk, ab_winner="").update(ab_winner=winner, ab_decided_at=now):
        step.ab_winner, step.ab_decided_at = winner, now
        return winner
    step.ab_winner = Step.objects.filter(pk=step.pk).values_list("ab_winner", flat=True).first() or ""
    return step.ab_winner

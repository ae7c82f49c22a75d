"""A/B subject tests of email steps, the pure part: settings, variant assignment, the winner rule.

See :mod:`nurturing.services.abtest` for how a batch uses them.
"""

import hashlib

from .models import Step, StepKind

VARIANTS = ("a", "b")
DEFAULT_SPLIT = 50
DEFAULT_TEST_SIZE = 100
DEFAULT_WAIT_HOURS = 4


def ab_is_test(step: Step) -> bool:
    return step.kind == StepKind.EMAIL and bool(step.config.get("subject_b"))


def ab_settings(config: dict) -> tuple[int, int, float]:
    """(percent on B, test group size, hours to wait for clicks) with the defaults filled in."""
    return (
        int(config.get("ab_split", DEFAULT_SPLIT)),
        int(config.get("ab_test_size", DEFAULT_TEST_SIZE)),
        float(config.get("ab_wait_hours", DEFAULT_WAIT_HOURS)),
    )


def variant_for(*, enrollment_id: int, step_id: int, split: int) -> str:
    """The enrolment's variant for this step: a stable hash bucket 0–99, B below ``split``."""
    digest = hashlib.blake2b(f"{enrollment_id}:{step_id}".encode(), digest_size=4).digest()
    return "b" if int.from_bytes(digest, "big") % 100 < split else "a"


def winner_by_click_rate(counts: dict[str, dict[str, int]]) -> str:
    """B wins only with a strictly higher click rate than A."""

    def rate(variant: str) -> float:
        row = counts.get(variant) or {}
        return row.get("clicked", 0) / row["sent"] if row.get("sent") else 0.0

    return "b" if rate("b") > rate("a") else "a"

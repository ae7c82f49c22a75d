"""What scoring decides about the funnel, as values: which leads qualify, and why.

Scoring never moves a lead. It answers :class:`Qualification` decisions (the target stage,
the reason and the evidence) and the leads app applies them through its one stage-change
function. The MQL test itself, :func:`qualifies_for_mql`, is the one predicate shared by
live scoring, the full recompute's promotion and the back-test replay. No queries here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engine import profile_complete

# The stages a lead is promoted from automatically (a lead further on keeps its stage and rep).
PROMOTABLE = ("visitor", "recycled")


@dataclass(frozen=True)
class Expansion:
    """An existing customer signalled they want more: the leads app opens an expansion
    opportunity and hands it to a rep. ``signal``: which configured signal, in words."""

    lead_id: int
    interaction_id: int
    signal: str
    reason: str


@dataclass(frozen=True)
class MqlCheck:
    """The MQL test's answer for one lead: ``ok`` and, when not, what is missing."""

    ok: bool
    below_threshold: bool
    blocked: bool
    missing_profile: tuple[str, ...]


def qualifies_for_mql(
    *, score: int, blocked: bool, profile: dict, threshold: int, required_profile_fields: list[str]
) -> MqlCheck:
    """The agreement between marketing and sales: score at or above the MQL threshold, the
    required profile present, and no blocking negative. The one place this rule is written."""
    missing = tuple(profile_complete(profile, required_profile_fields))
    below = score < threshold
    return MqlCheck(
        ok=not below and not blocked and not missing, below_threshold=below, blocked=blocked, missing_profile=missing
    )


@dataclass
class Qualification:
    """Scoring's decision that a lead enters a stage awaiting sales (MQL or PQL).

    ``expected_from``: the stages the lead must still be in when the funnel applies it
    (None: any stage the funnel allows the move from).
    """

    lead_id: int
    to_stage: str
    cause_ref: str
    reason: str
    details: dict = field(default_factory=dict)
    expected_from: tuple[str, ...] | None = None

"""The numbers of scoring (caps, decay, half-up rounding, the 0-100 dimension and combined
scores), pure so the engine and the ruleset selectors add up points exactly the same way."""

from __future__ import annotations

import math
from datetime import datetime


def clamp_to_cap(total: float, cap: float | None) -> float:
    """A running total limited by the rule's cap (a negative cap is a floor)."""
    if cap is None:
        return total
    return min(total, cap) if cap > 0 else max(total, cap)


def decay_factor(half_life_days: float | None, since: datetime | None, until: datetime) -> float:
    if not half_life_days or since is None:
        return 1.0
    days = (until - since).total_seconds() / 86400.0
    if days <= 0:
        return 1.0
    return 0.5 ** (days / half_life_days)


def round_half_up(value: float) -> int:
    """Same rounding in Python and in SQL (FLOOR(x + 0.5)); Python's round() is banker's."""
    return int(math.floor(value + 0.5))


def dimension_score(points: float) -> int:
    """A dimension's 0–100 score: its points, rounded and clamped to 0..100."""
    return max(0, min(100, round_half_up(points)))


def combined_score(fit_score: int, engagement_score: int, *, fit_weight: int, engagement_weight: int) -> int:
    total = fit_weight + engagement_weight
    if total <= 0:
        return 0
    return max(0, min(100, round_half_up((fit_weight * fit_score + engagement_weight * engagement_score) / total)))

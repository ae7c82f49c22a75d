"""A rule as an immutable value, and the rule in words: the per-process ruleset cache and the
backtest hold these rather than model instances, and the words become a contribution's reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleSpec:
    """An immutable copy of a rule (what the per-process cache holds)."""

    id: int
    name: str
    dimension: str
    source: str
    field: str = ""
    operator: str = ""
    value: Any = None
    interaction_type: str = ""
    property: str = ""
    points: float = 0.0
    use_channel_weight: bool = False
    max_points: float | None = None
    half_life_days: float | None = None
    blocks_mql: bool = False

    @classmethod
    def from_obj(cls, obj: Any) -> RuleSpec:
        get = obj.get if isinstance(obj, Mapping) else (lambda name, default=None: getattr(obj, name, default))
        return cls(
            id=get("id", 0) or 0,
            name=get("name", "") or "",
            dimension=get("dimension", "engagement") or "engagement",
            source=get("source", "") or "",
            field=get("field", "") or "",
            operator=get("operator", "") or "",
            value=get("value", None),
            interaction_type=get("interaction_type", "") or "",
            property=get("property", "") or "",
            points=float(get("points", 0) or 0),
            use_channel_weight=bool(get("use_channel_weight", False)),
            max_points=None if get("max_points", None) is None else float(get("max_points")),
            half_life_days=None if get("half_life_days", None) in (None, 0) else float(get("half_life_days")),
            blocks_mql=bool(get("blocks_mql", False)),
        )


def describe(rule: RuleSpec) -> str:
    """The rule in words, for the contribution's reason."""
    if rule.source == "profile":
        what = f"{rule.field} {_op_words(rule.operator, rule.value)}"
    elif rule.property:
        what = f"{rule.interaction_type} with {rule.property} {_op_words(rule.operator or 'present', rule.value)}"
    else:
        what = rule.interaction_type
    return f"{rule.name} ({what})"


def _op_words(operator: str, value: Any) -> str:
    if operator == "present":
        return "is filled in" if value in (None, True, "true", 1) else "is empty"
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    words = {
        "equals": "is",
        "in": "is one of",
        "contains": "contains",
        "endswith": "ends with",
        "gte": "≥",
        "lte": "≤",
        "regex": "matches",
    }
    return f"{words.get(operator, operator)} {shown}"

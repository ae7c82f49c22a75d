"""The expansion rule: which events from an existing customer signal they want more (a bigger
plan, more seats), so sales gets an expansion opportunity — the "service qualified lead".

Configured by ``EXPANSION_SIGNALS``: a comma-separated list of interaction types, each optionally
narrowed to one property value, e.g. ``upgrade_interest, product_usage:feature=seats_limit_reached,
demo_request``. Pure functions, no ORM.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpansionSignal:
    """One configured signal: an interaction type, and optionally a property that must equal a value."""

    type: str
    property: str = ""
    value: str = ""

    def matches(self, interaction_type: str, properties: dict | None) -> bool:
        if interaction_type != self.type:
            return False
        if not self.property:
            return True
        value = (properties or {}).get(self.property)
        return value is not None and str(value).strip().lower() == self.value.lower()

    def __str__(self) -> str:
        return f"{self.type} with {self.property} = {self.value}" if self.property else self.type


def expansion_signals_parse(raw: str, *, known_types: frozenset[str] | set[str]) -> tuple[ExpansionSignal, ...]:
    """``type[:property=value], …`` → signals. ValueError naming the bad item."""
    signals = []
    for item in (part.strip() for part in (raw or "").split(",")):
        if not item:
            continue
        type_, _, condition = item.partition(":")
        type_ = type_.strip()
        if type_ not in known_types:
            raise ValueError(f"{type_!r} is not an interaction type")
        prop, value = "", ""
        if condition:
            prop, sep, value = condition.partition("=")
            prop, value = prop.strip(), value.strip()
            if not sep or not prop or not value:
                raise ValueError(f"{item!r}: write type:property=value")
        signals.append(ExpansionSignal(type=type_, property=prop, value=value))
    return tuple(signals)


def expansion_match(signals: tuple[ExpansionSignal, ...], interaction_type: str, properties: dict | None):
    """The first signal this event matches, or None."""
    for signal in signals:
        if signal.matches(interaction_type, properties):
            return signal
    return None

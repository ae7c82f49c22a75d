"""Whether a rule-shaped condition matches an interaction or a lead, kept beside the profile
and value logic it builds on so a condition written anywhere means what a scoring rule means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .profiles import _dig, lead_profile, profile_value
from .spec import RuleSpec
from .values import value_matches


def _interaction_parts(interaction: Any) -> tuple[str, Mapping]:
    if isinstance(interaction, Mapping):
        return interaction.get("type", ""), interaction.get("properties") or {}
    return getattr(interaction, "type", ""), getattr(interaction, "properties", None) or {}


def interaction_matches(rule: RuleSpec | Mapping, interaction: Any) -> bool:
    get = rule.get if isinstance(rule, Mapping) else (lambda name, default=None: getattr(rule, name, default))
    itype, properties = _interaction_parts(interaction)
    wanted = get("interaction_type", "")
    if wanted and wanted != itype:
        return False
    prop = get("property", "") or ""
    if not prop:
        return True
    return value_matches(_dig(properties, prop), get("operator", "") or "present", get("value", None))


def profile_matches(rule: RuleSpec | Mapping, profile: Mapping[str, Any]) -> bool:
    get = rule.get if isinstance(rule, Mapping) else (lambda name, default=None: getattr(rule, name, default))
    return value_matches(profile_value(profile, get("field", "")), get("operator", "") or "present", get("value", None))


def condition_matches(condition: Mapping, *, interaction: Any = None, lead: Any = None) -> bool:
    """Evaluate a rule-shaped condition (see module doc) against an interaction or a lead.

    ``lead`` may be a Lead, a mapping of its columns or a ready profile from
    :func:`lead_profile`. An interaction condition with no interaction given is
    False; a profile condition with no lead given is False.
    """
    source = condition.get("source") or ("interaction" if condition.get("interaction_type") else "profile")
    if source == "interaction":
        if interaction is None:
            return False
        return interaction_matches(condition, interaction)
    if lead is None:
        return False
    profile = lead if isinstance(lead, Mapping) and "email_domain_kind" in lead else lead_profile(lead)
    return profile_matches(condition, profile)

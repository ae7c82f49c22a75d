"""Checks a rule before it is stored, with one message per offending field, so the API, the
rule editor and the backtest's candidate rules refuse a bad rule for the same reason."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .profiles import CUSTOM_PREFIX, EMAIL_DOMAIN_KINDS, PROFILE_FIELDS
from .regex_cost import regex_problem
from .values import OPERATORS, _as_list, _to_number

OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "str": ("equals", "in", "contains", "endswith", "present", "regex"),
    "choice": ("equals", "in", "present"),
    "int": ("equals", "in", "gte", "lte", "present"),
    "bool": ("equals", "present"),
    "list": ("contains", "present"),
    "any": OPERATORS,
}

MAX_LIST_VALUES = 200


def field_type(field_name: str) -> str | None:
    if field_name.startswith(CUSTOM_PREFIX) and len(field_name) > len(CUSTOM_PREFIX):
        return "any"
    return PROFILE_FIELDS.get(field_name)


def _value_errors(operator: str, value: Any, ftype: str, where: str) -> str | None:
    if operator == "present":
        if value not in (None, True, False):
            return "For 'present' the value is true (field must be filled) or false (must be empty)."
        return None
    if value is None:
        return f"The operator '{operator}' needs a value."
    if operator == "in":
        if not isinstance(value, list) or not value:
            return "For 'in' the value must be a non-empty list."
        if len(value) > MAX_LIST_VALUES:
            return f"At most {MAX_LIST_VALUES} values."
        if ftype == "choice" and where == "email_domain_kind":
            bad = [v for v in value if v not in EMAIL_DOMAIN_KINDS]
            if bad:
                return f"email_domain_kind is one of {', '.join(EMAIL_DOMAIN_KINDS)}."
        return None
    if operator in ("gte", "lte"):
        if isinstance(value, bool) or _to_number(value) is None:
            return f"For '{operator}' the value must be a number."
        return None
    if operator == "regex":
        return regex_problem(value)
    if operator in ("contains", "endswith"):
        items = _as_list(value)
        if not items or len(items) > MAX_LIST_VALUES:
            return f"For '{operator}' give a text or a list of up to {MAX_LIST_VALUES} texts."
        if any(isinstance(i, (dict, list)) or i is None or i == "" for i in items):
            return f"For '{operator}' every value must be a non-empty text."
        return None
    if operator == "equals":
        if isinstance(value, (dict, list)):
            return "For 'equals' the value must be a single text, number or true/false."
        if ftype == "bool" and not isinstance(value, bool):
            return "This field is true or false; compare it with true or false."
        if ftype == "int" and (isinstance(value, bool) or _to_number(value) is None):
            return "This field is a number; compare it with a number."
        if ftype == "choice" and where == "email_domain_kind" and value not in EMAIL_DOMAIN_KINDS:
            return f"email_domain_kind is one of {', '.join(EMAIL_DOMAIN_KINDS)}."
    return None


def rule_errors(data: Mapping[str, Any], *, interaction_types: Iterable[str]) -> dict[str, str]:
    """Per-field messages for an invalid rule (empty when valid). ``data`` is the full rule."""
    errors: dict[str, str] = {}
    dimension = data.get("dimension")
    source = data.get("source")
    operator = data.get("operator") or ""
    value = data.get("value")
    if dimension not in ("fit", "engagement"):
        errors["dimension"] = "Dimension is 'fit' or 'engagement'."
    if source not in ("profile", "interaction"):
        errors["source"] = "Source is 'profile' or 'interaction'."
        return errors
    if operator and operator not in OPERATORS:
        errors["operator"] = f"Unknown operator '{operator}'; use one of: {', '.join(OPERATORS)}."
        return errors

    if source == "profile":
        field_name = data.get("field") or ""
        ftype = field_type(field_name)
        if not field_name:
            errors["field"] = "A profile rule needs a field."
        elif ftype is None:
            errors["field"] = (
                f"Unknown profile field '{field_name}'. Use one of: {', '.join(sorted(PROFILE_FIELDS))}, "
                "or custom.<name> for a custom form field."
            )
        elif not operator:
            errors["operator"] = "A profile rule needs an operator."
        elif operator not in OPERATORS_BY_TYPE[ftype]:
            errors["operator"] = (
                f"The operator '{operator}' does not apply to '{field_name}' ({ftype}); "
                f"use one of: {', '.join(OPERATORS_BY_TYPE[ftype])}."
            )
        else:
            problem = _value_errors(operator, value, ftype, field_name)
            if problem:
                errors["value"] = problem
        for name in ("interaction_type", "property"):
            if data.get(name):
                errors[name] = f"A profile rule has no {name}."
        if data.get("half_life_days"):
            errors["half_life_days"] = "Only interaction rules decay; profile points hold while the profile does."
        if data.get("use_channel_weight"):
            errors["use_channel_weight"] = "Channel weight applies to form_submit interaction rules only."
    else:
        itype = data.get("interaction_type") or ""
        types = set(interaction_types)
        if not itype:
            errors["interaction_type"] = "An interaction rule needs an interaction_type."
        elif itype not in types:
            errors["interaction_type"] = f"Unknown interaction type '{itype}'; use one of: {', '.join(sorted(types))}."
        if data.get("field"):
            errors["field"] = "An interaction rule tests a property, not a profile field."
        prop = data.get("property") or ""
        if prop:
            if len(prop) > 100 or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", prop):
                errors["property"] = "A property is a name like 'url' or 'utm.source' (letters, digits, _ and -)."
            elif operator:
                problem = _value_errors(operator, value, "any", prop)
                if problem:
                    errors["value"] = problem
        elif operator or value not in (None, ""):
            errors["property"] = "Give the property the operator and value test (e.g. 'url')."
        if data.get("use_channel_weight") and itype and itype != "form_submit":
            errors["use_channel_weight"] = "Channel weight applies to form_submit rules only."
        hl = data.get("half_life_days")
        if hl is not None and hl != 0:
            if isinstance(hl, bool) or _to_number(hl) is None or float(hl) <= 0:
                errors["half_life_days"] = "Half-life is a positive number of days."
            elif dimension != "engagement":
                errors["half_life_days"] = "Only engagement points decay; fit does not."

    points = data.get("points")
    if points is None or isinstance(points, bool) or _to_number(points) is None:
        errors["points"] = "Points must be a number (negative allowed)."
    elif abs(float(points)) > 1000:
        errors["points"] = "Points must be between -1000 and 1000."
    elif float(points) == 0 and not data.get("use_channel_weight"):
        errors["points"] = "A rule giving 0 points does nothing; give it points."
    cap = data.get("max_points")
    if cap is not None and "points" not in errors:
        if isinstance(cap, bool) or _to_number(cap) is None or float(cap) == 0:
            errors["max_points"] = "The cap must be a non-zero number, or empty for no cap."
        elif (float(cap) > 0) != (float(points) > 0) and not data.get("use_channel_weight"):
            errors["max_points"] = (
                "The cap must have the same sign as the points (a negative rule is capped at a negative total)."
            )
        elif abs(float(cap)) < abs(float(points)) and not data.get("use_channel_weight"):
            errors["max_points"] = "The cap is smaller than the points of a single match."
    return errors

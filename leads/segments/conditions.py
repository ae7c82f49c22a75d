"""A segment's definition: the fields and behaviours it may test, the operators each allows, and
its validation with one message per bad condition. Pure (no ORM): the API, the dashboard's
builder and the sequence editor refuse a bad segment for the same reason, in the same words.

Shape::

    {"match": "all" | "any",
     "conditions": [
        {"field": "title", "operator": "contains", "value": "VP"},
        {"field": "score", "operator": "between", "value": [40, 80]},
        {"field": "custom.plan", "operator": "equals", "value": "pro"},
        {"behaviour": "page_view", "property": "url", "operator": "contains", "value": "/pricing",
         "at_least": 2, "within_days": 30},
        {"behaviour": "email_open", "never": true},
     ]}

The operators are scoring rules' (``scoring.rules.OPERATORS``: equals, in, contains, endswith,
gte, lte, present, regex, compared case-insensitively) plus ``not_equals``, ``not_contains``,
``between`` (ranges) and ``within_days`` (dates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from scoring.rules import OPERATORS as RULE_OPERATORS
from scoring.rules import regex_problem

from ..models import Channel, InteractionType, Stage

CUSTOM_PREFIX = "custom."
MAX_CONDITIONS = 50
MAX_LIST_VALUES = 200
MAX_AT_LEAST = 1000
MAX_WITHIN_DAYS = 3650
PROPERTY_PATTERN = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # text | choice | number | tags | bool | owner | form | date | custom
    path: str  # the ORM path on Lead
    label: str


OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    "text": ("equals", "not_equals", "in", "contains", "not_contains", "endswith", "present", "regex"),
    "choice": ("equals", "not_equals", "in"),
    "number": ("equals", "gte", "lte", "between"),
    "tags": ("contains", "not_contains", "present"),
    "bool": ("equals",),
    "owner": ("equals", "in", "present"),
    "form": ("equals", "in", "present"),
    "date": ("gte", "lte", "within_days"),
    "custom": ("equals", "not_equals", "in", "contains", "not_contains", "endswith", "gte", "lte", "present"),
}
# Behaviour rows test an interaction property the way scoring rules do.
PROPERTY_OPERATORS: tuple[str, ...] = tuple(RULE_OPERATORS)

FIELDS: dict[str, FieldSpec] = {
    # profile
    "email": FieldSpec("text", "email", "Email"),
    "first_name": FieldSpec("text", "first_name", "First name"),
    "last_name": FieldSpec("text", "last_name", "Last name"),
    "title": FieldSpec("text", "title", "Job title"),
    "phone": FieldSpec("text", "phone", "Phone"),
    "country": FieldSpec("text", "country", "Country"),
    "city": FieldSpec("text", "city", "City"),
    "time_zone": FieldSpec("text", "time_zone", "Time zone"),
    "consent": FieldSpec("bool", "consent", "Consent given"),
    "unsubscribed": FieldSpec("bool", "unsubscribed_at", "Unsubscribed"),
    "email_bounced": FieldSpec("bool", "email_bounced_at", "Email bounced"),
    "tags": FieldSpec("tags", "tags", "Tags"),
    # company
    "company_name": FieldSpec("text", "company_name", "Company"),
    "company_size": FieldSpec("text", "company_size", "Company size (band)"),
    "company_employees": FieldSpec("number", "company__employees", "Company employees"),
    "industry": FieldSpec("text", "industry", "Industry"),
    "company_industry": FieldSpec("text", "company__industry", "Company's industry"),
    # funnel
    "stage": FieldSpec("choice", "stage", "Stage"),
    "score": FieldSpec("number", "score", "Score"),
    "fit_score": FieldSpec("number", "fit_score", "Fit score"),
    "engagement_score": FieldSpec("number", "engagement_score", "Engagement score"),
    "owner": FieldSpec("owner", "owner_id", "Owner"),
    # attribution
    "source": FieldSpec("text", "source", "Source"),
    "channel": FieldSpec("choice", "channel", "Channel"),
    "campaign": FieldSpec("text", "utm_campaign", "Campaign (utm_campaign)"),
    "utm_source": FieldSpec("text", "utm_source", "utm_source"),
    "utm_medium": FieldSpec("text", "utm_medium", "utm_medium"),
    "form": FieldSpec("form", "first_form__slug", "First form (slug)"),
    "first_page_url": FieldSpec("text", "first_page_url", "First page URL"),
    # dates
    "created_at": FieldSpec("date", "created_at", "Created"),
    "last_activity_at": FieldSpec("date", "last_activity_at", "Last activity"),
}
CHOICES: dict[str, tuple[str, ...]] = {"stage": tuple(Stage.values), "channel": tuple(Channel.values)}
BEHAVIOURS: tuple[str, ...] = tuple(InteractionType.values)
OPERATOR_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "contains": "contains",
    "not_contains": "does not contain",
    "endswith": "ends with",
    "present": "is filled in",
    "regex": "matches (regex)",
    "gte": "≥",
    "lte": "≤",
    "between": "between",
    "within_days": "within the last N days",
}
FIELD_KEYS = frozenset({"field", "operator", "value"})
BEHAVIOUR_KEYS = frozenset({"behaviour", "property", "operator", "value", "at_least", "within_days", "never"})


def field_spec(name: str) -> FieldSpec | None:
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        key = name[len(CUSTOM_PREFIX) :]
        if not PROPERTY_PATTERN.fullmatch(key) or len(key) > 100:
            return None
        return FieldSpec("custom", "custom_fields__" + key.replace(".", "__"), f"Custom field {key}")
    return FIELDS.get(name)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _value_problem(name: str, spec: FieldSpec, operator: str, value: Any) -> str | None:
    """What is wrong with ``value`` for this field and operator (None when fine)."""
    kind = spec.kind
    if operator == "present":
        return None if isinstance(value, bool) else "for 'present' the value is true (filled in) or false (empty)."
    if operator == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)):
            return "for 'between' the value is two numbers [low, high]."
        if value[0] > value[1]:
            return f"the range [{value[0]}, {value[1]}] is empty: its low end is above its high end."
        return None
    if operator == "within_days":
        return (
            None if _whole(value, 1, MAX_WITHIN_DAYS) else f"give a whole number of days from 1 to {MAX_WITHIN_DAYS}."
        )
    if operator == "in":
        if not isinstance(value, list) or not value:
            return "for 'in' the value is a non-empty list."
        if len(value) > MAX_LIST_VALUES:
            return f"at most {MAX_LIST_VALUES} values."
        items = value
    else:
        items = [value]
    for item in items:
        problem = _item_problem(name, kind, operator, item)
        if problem:
            return problem
    return None


def _item_problem(name: str, kind: str, operator: str, item: Any) -> str | None:
    if item is None:
        return f"the operator '{operator}' needs a value."
    if kind == "number" or (kind == "custom" and operator in ("gte", "lte")):
        return None if _is_number(item) else f"'{item}' is not a number."
    if kind == "bool":
        return None if isinstance(item, bool) else "the value is true or false."
    if kind == "choice":
        allowed = CHOICES[name]
        return None if item in allowed else f"'{item}' is not a {name}; use one of: {', '.join(allowed)}."
    if kind == "owner":
        return None if _whole(item, 1, 2**31 - 1) else "the owner is a user id (a whole number)."
    if kind == "date":
        return None if _parse_date(item) else f"'{item}' is not a date (YYYY-MM-DD)."
    if kind == "custom" and _is_number(item) and operator in ("equals", "not_equals", "in"):
        return None
    if isinstance(item, (dict, list, bool)) or not _text(item):
        return "the value is a non-empty text."
    if len(item) > 500:
        return "the value is at most 500 characters."
    if operator == "regex":
        return regex_problem(item)
    return None


def _field_errors(condition: Mapping) -> list[str]:
    name = condition.get("field")
    unknown = set(condition) - FIELD_KEYS
    if unknown:
        return [f"unknown key(s) {', '.join(sorted(unknown))}; a field condition has field, operator and value."]
    if not isinstance(name, str) or not name:
        return ["a field condition needs a 'field'."]
    spec = field_spec(name)
    if spec is None:
        return [f"unknown field '{name}'; use one of: {', '.join(FIELDS)}, or custom.<name> for a custom field."]
    operator = condition.get("operator")
    allowed = OPERATORS_BY_KIND[spec.kind]
    if operator not in allowed:
        what = f"operator '{operator}'" if operator else "no operator"
        return [f"{what} is not valid for {name}; use one of: {', '.join(allowed)}."]
    problem = _value_problem(name, spec, operator, condition.get("value"))
    return [problem] if problem else []


def _behaviour_errors(condition: Mapping) -> list[str]:
    errors = []
    unknown = set(condition) - BEHAVIOUR_KEYS
    if unknown:
        errors.append(
            f"unknown key(s) {', '.join(sorted(unknown))}; a behaviour condition has behaviour, property, "
            "operator, value, at_least, within_days and never."
        )
    itype = condition.get("behaviour")
    if itype not in BEHAVIOURS:
        errors.append(f"unknown interaction type '{itype}'; use one of: {', '.join(BEHAVIOURS)}.")
    prop = condition.get("property")
    operator = condition.get("operator")
    if prop not in (None, ""):
        if not isinstance(prop, str) or len(prop) > 100 or not PROPERTY_PATTERN.fullmatch(prop):
            errors.append("a property is a name like 'url' or 'utm.source' (letters, digits, _ and -).")
        elif operator not in PROPERTY_OPERATORS:
            errors.append(
                f"operator '{operator}' is not valid for a property; use one of: {', '.join(PROPERTY_OPERATORS)}."
            )
        else:
            spec = FieldSpec("custom", "", prop)
            problem = _value_problem(prop, spec, operator, condition.get("value"))
            if problem:
                errors.append(problem)
    elif operator not in (None, "") or condition.get("value") not in (None, ""):
        errors.append("give the property that the operator and value test (e.g. 'url').")
    never = condition.get("never", False)
    if not isinstance(never, bool):
        errors.append("'never' is true or false.")
    at_least = condition.get("at_least")
    if at_least is not None:
        if not _whole(at_least, 1, MAX_AT_LEAST):
            errors.append(f"'at_least' is a whole number from 1 to {MAX_AT_LEAST}.")
        elif never is True and at_least != 1:
            errors.append("'never' and 'at_least' exclude each other: a lead never did it, or did it N times.")
    within = condition.get("within_days")
    if within is not None and not _whole(within, 1, MAX_WITHIN_DAYS):
        errors.append(f"'within_days' is a whole number of days from 1 to {MAX_WITHIN_DAYS}.")
    return errors


def condition_label(condition: Any) -> str:
    if isinstance(condition, Mapping):
        if "behaviour" in condition:
            return str(condition.get("behaviour"))
        if "field" in condition:
            return str(condition.get("field"))
    return "?"


def definition_errors(definition: Any) -> list[str]:
    """Every problem of a segment definition, each naming its condition
    ("Condition 2 (score): ..."); empty when the definition is valid."""
    if not isinstance(definition, Mapping):
        return ['The definition is an object: {"match": "all"|"any", "conditions": [...]}.']
    errors = []
    unknown = set(definition) - {"match", "conditions"}
    if unknown:
        errors.append(f"Unknown key(s) in the definition: {', '.join(sorted(unknown))}; use match and conditions.")
    if definition.get("match", "all") not in ("all", "any"):
        errors.append("match is 'all' (every condition) or 'any' (at least one).")
    conditions = definition.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        errors.append("A segment needs at least one condition.")
        return errors
    if len(conditions) > MAX_CONDITIONS:
        errors.append(f"A segment has at most {MAX_CONDITIONS} conditions.")
        return errors
    for index, condition in enumerate(conditions, start=1):
        if not isinstance(condition, Mapping):
            problems = ["a condition is an object with a 'field' or a 'behaviour'."]
        elif "behaviour" in condition:
            problems = _behaviour_errors(condition)
        elif "field" in condition:
            problems = _field_errors(condition)
        else:
            problems = ["a condition has a 'field' (a lead attribute) or a 'behaviour' (an interaction type)."]
        errors += [f"Condition {index} ({condition_label(condition)}): {p}" for p in problems]
    return errors


def definition_normalized(definition: Mapping) -> dict:
    """The stored form of a valid definition: ``match`` explicit, behaviour defaults filled in."""
    conditions = []
    for condition in definition["conditions"]:
        if "behaviour" in condition:
            item = {"behaviour": condition["behaviour"]}
            if condition.get("property"):
                item.update(property=condition["property"], operator=condition["operator"])
                if "value" in condition:
                    item["value"] = condition["value"]
            if condition.get("never"):
                item["never"] = True
            else:
                item["at_least"] = condition.get("at_least") or 1
            if condition.get("within_days"):
                item["within_days"] = condition["within_days"]
            conditions.append(item)
        else:
            conditions.append({k: condition[k] for k in ("field", "operator", "value") if k in condition})
    return {"match": definition.get("match", "all"), "conditions": conditions}


def describe_condition(condition: Mapping) -> str:
    """A condition in words, for the segment list and page."""
    if "behaviour" in condition:
        what = condition["behaviour"].replace("_", " ")
        if condition.get("property"):
            what += f" with {condition['property']} {_op_words(condition['operator'], condition.get('value'))}"
        window = f" in the last {condition['within_days']} days" if condition.get("within_days") else ""
        if condition.get("never"):
            return f"never did {what}{window}"
        times = condition.get("at_least") or 1
        return f"did {what} at least {times} time{'s' if times != 1 else ''}{window}"
    spec = field_spec(condition.get("field", ""))
    label = spec.label if spec else condition.get("field", "")
    return f"{label} {_op_words(condition.get('operator', ''), condition.get('value'))}"


def _op_words(operator: str, value: Any) -> str:
    if operator == "present":
        return "is filled in" if value else "is empty"
    if operator == "between" and isinstance(value, list) and len(value) == 2:
        return f"between {value[0]} and {value[1]}"
    if operator == "within_days":
        return f"within the last {value} days"
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return f"{OPERATOR_LABELS.get(operator, operator)} {shown}"

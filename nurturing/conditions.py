"""Conditions for branches and goals, as pure functions (no ORM).

Shapes (the scoring-rule condition shape, plus a stage shortcut):

- profile/field: ``{"field": "score", "operator": "gte", "value": 40}``; fields are lead
  attributes (score, fit_score, engagement_score, stage, title, industry, country,
  company_size, source, channel, tags, ...) or ``custom_fields.<name>``;
- interaction: ``{"interaction_type": "content_download", "property": "asset",
  "operator": "equals", "value": "pricing-guide"}`` (property optional) — for a branch it
  means "did X since enrolment";
- stage: ``{"stage": "mql"}`` — for a goal, "became MQL"; for a branch, "is in stage".

An optional ``"source": "profile" | "interaction" | "stage"`` is accepted and checked.

Operators shared with scoring rules (equals, in, contains, endswith, gte, lte, present,
regex) are evaluated by scoring's own matcher (``scoring.rules.value_matches``), so a goal
matches exactly like the rule a marketer wrote next to it; nurturing adds not_equals,
startswith and absent, and the score/stage fields branches need.
"""

from collections.abc import Mapping
from typing import Any

from scoring.rules import regex_problem, value_matches

SHARED_OPERATORS = frozenset({"equals", "in", "contains", "endswith", "gte", "lte", "present", "regex"})
OPERATORS = (
    "equals",
    "not_equals",
    "in",
    "contains",
    "endswith",
    "startswith",
    "gte",
    "lte",
    "present",
    "absent",
    "regex",
)
LEAD_FIELDS = frozenset(
    {
        "score",
        "fit_score",
        "engagement_score",
        "stage",
        "email",
        "first_name",
        "last_name",
        "title",
        "phone",
        "company_name",
        "company_size",
        "industry",
        "country",
        "city",
        "time_zone",
        "source",
        "channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "tags",
        "consent",
        "predicted_probability",
        "cycle",
    }
)
INTERACTION_TYPES = frozenset(
    {
        "page_view",
        "form_submit",
        "content_download",
        "email_sent",
        "email_open",
        "email_click",
        "email_bounce",
        "email_soft_bounce",
        "email_delivered",
        "email_complaint",
        "message_skipped",
        "unsubscribe",
        "webinar_registered",
        "webinar_attended",
        "event_attended",
        "trade_show_visit",
        "demo_request",
        "trial_started",
        "product_usage",
        "social_follow",
        "sms_sent",
        "sms_click",
        "upgrade_interest",
        "note",
        "call",
        "meeting",
    }
)
STAGES = frozenset({"visitor", "mql", "sal", "sql", "customer", "pql", "recycled", "disqualified", "lost"})


class ConditionError(ValueError):
    pass


def condition_kind(condition: Mapping[str, Any]) -> str:
    if "interaction_type" in condition:
        return "interaction"
    if "field" in condition:
        return "profile"
    if "stage" in condition:
        return "stage"
    raise ConditionError("A condition needs a 'field', an 'interaction_type' or a 'stage'.")


def condition_validate(condition: object) -> dict:
    """Return the condition if it is well-formed, else raise ConditionError with a readable message."""
    if not isinstance(condition, dict):
        raise ConditionError("A condition must be an object.")
    kind = condition_kind(condition)
    source = condition.get("source")
    if source is not None and source != kind:
        raise ConditionError(f"The condition's source is {source!r} but it describes a {kind} condition.")
    if kind == "stage":
        if condition["stage"] not in STAGES:
            raise ConditionError(f"Unknown stage {condition['stage']!r}; use one of {', '.join(sorted(STAGES))}.")
        return condition
    if kind == "interaction":
        if condition["interaction_type"] not in INTERACTION_TYPES:
            raise ConditionError(f"Unknown interaction type {condition['interaction_type']!r}.")
        if "property" in condition and not isinstance(condition["property"], str):
            raise ConditionError("'property' must be the name of an interaction property.")
        if "property" not in condition:
            return condition
    else:
        field = condition["field"]
        if not isinstance(field, str) or not (
            field in LEAD_FIELDS or (field.startswith("custom_fields.") and len(field) > len("custom_fields."))
        ):
            raise ConditionError(
                f"Unknown lead field {field!r}; use one of {', '.join(sorted(LEAD_FIELDS))} or custom_fields.<name>."
            )
    operator = condition.get("operator", "equals")
    if operator not in OPERATORS:
        raise ConditionError(f"Unknown operator {operator!r}; use one of {', '.join(OPERATORS)}.")
    if operator not in ("present", "absent") and "value" not in condition:
        raise ConditionError(f"The operator {operator!r} needs a 'value'.")
    if operator == "in" and not isinstance(condition["value"], list):
        raise ConditionError("The operator 'in' needs a list as 'value'.")
    if operator in ("gte", "lte"):
        try:
            float(condition["value"])
        except (TypeError, ValueError):
            raise ConditionError(f"The operator {operator!r} needs a number as 'value'.") from None
    if operator == "regex":
        problem = regex_problem(condition["value"])
        if problem:
            raise ConditionError(f"value: {problem}")
    return condition


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if operator in SHARED_OPERATORS and not (operator == "present" and expected is not None):
        return value_matches(actual, operator, expected)
    if operator == "present":
        return actual not in (None, "", [], {})
    if operator == "absent":
        return actual in (None, "", [], {})
    if actual is None:
        return operator == "not_equals"
    if operator in ("gte", "lte"):
        try:
            left, right = float(actual), float(expected)
        except (TypeError, ValueError):
            return False
        return left >= right if operator == "gte" else left <= right
    if isinstance(actual, list):
        # List fields (tags): "equals"/"contains" mean "has this element".
        if operator in ("equals", "contains"):
            return any(_norm(item) == _norm(expected) for item in actual)
        if operator == "not_equals":
            return all(_norm(item) != _norm(expected) for item in actual)
        if operator == "in":
            return any(_norm(item) in {_norm(v) for v in expected} for item in actual)
        return False
    left = _norm(actual)
    if operator == "equals":
        return left == _norm(expected)
    if operator == "not_equals":
        return left != _norm(expected)
    if operator == "in":
        return left in {_norm(v) for v in expected}
    if operator == "contains":
        return str(_norm(expected)) in str(left)
    if operator == "endswith":
        return str(left).endswith(str(_norm(expected)))
    if operator == "startswith":
        return str(left).startswith(str(_norm(expected)))
    return False


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def lead_value(lead: Any, field: str) -> Any:
    if field.startswith("custom_fields."):
        return (getattr(lead, "custom_fields", None) or {}).get(field.split(".", 1)[1])
    return getattr(lead, field, None)


def lead_matches(condition: Mapping[str, Any], lead: Any) -> bool:
    """A profile or stage condition against a lead-like object (attributes)."""
    kind = condition_kind(condition)
    if kind == "stage":
        return getattr(lead, "stage", None) == condition["stage"]
    if kind != "profile":
        raise ConditionError("lead_matches takes profile or stage conditions.")
    return _compare(lead_value(lead, condition["field"]), condition.get("operator", "equals"), condition.get("value"))


def interaction_matches(condition: Mapping[str, Any], interaction_type: str, properties: Mapping[str, Any]) -> bool:
    if condition.get("interaction_type") != interaction_type:
        return False
    prop = condition.get("property")
    if not prop:
        return True
    return _compare((properties or {}).get(prop), condition.get("operator", "equals"), condition.get("value"))

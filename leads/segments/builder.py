"""The dashboard's condition builder: rows of field / operator / value (and behaviour rows) as
posted by the segment editor, turned into the API's definition — and back, to redisplay a segment.
Typing follows each field's kind (numbers, true/false, comma-separated lists), so the marketer
types text and the same validation as the API (:func:`.conditions.definition_errors`) judges it.
Also the leads list's filters as a definition ("save these filters as a segment")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from leadfunnel.errors import DomainError

from ..models import Segment
from .conditions import CUSTOM_PREFIX, field_spec

if TYPE_CHECKING:
    from ..dashboard import LeadFilters

ROW_KEYS = (
    "type",  # "field" | "behaviour"
    "field",
    "custom",  # the custom field's name when field is "custom"
    "operator",
    "value",
    "value2",
    "behaviour",
    "mode",  # "at_least" | "never"
    "at_least",
    "within_days",
    "property",
    "prop_operator",
    "prop_value",
)
# The builder offers "is empty" beside "is filled in"; both are the API's `present`.
BUILDER_OPERATORS = {"present": ("present", True), "empty": ("present", False)}
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _typed(text: str, kind: str, operator: str, owner_id: Callable[[str], Any]) -> Any:
    text = text.strip()
    if kind == "number" or (kind == "custom" and operator in ("gte", "lte")) or operator == "within_days":
        return _number(text) if text else None
    if kind == "bool":
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    if kind == "owner":
        return int(text) if text.isdigit() else owner_id(text)
    return text if text else None


def _value(kind: str, operator: str, value: str, value2: str, owner_id) -> Any:
    if operator == "between":
        return [_typed(value, "number", operator, owner_id), _typed(value2, "number", operator, owner_id)]
    if operator == "in":
        return [_typed(part, kind, operator, owner_id) for part in value.split(",") if part.strip()]
    return _typed(value, kind, operator, owner_id)


def rows_from_post(post, *, owner_id: Callable[[str], Any] = lambda name: name) -> list[dict]:
    """The builder's rows as posted (parallel lists ``c_<key>``), for redisplay and parsing."""
    lists = {key: post.getlist(f"c_{key}") for key in ROW_KEYS}
    count = len(lists["type"])
    return [{key: (lists[key][i] if i < len(lists[key]) else "") for key in ROW_KEYS} for i in range(count)]


def definition_from_rows(match: str, rows: list[dict], *, owner_id: Callable[[str], Any] = lambda name: name) -> dict:
    conditions = []
    for row in rows:
        if row["type"] == "behaviour":
            condition: dict = {"behaviour": row["behaviour"]}
            if row["property"].strip():
                operator, value = BUILDER_OPERATORS.get(row["prop_operator"], (row["prop_operator"], None))
                condition["property"] = row["property"].strip()
                condition["operator"] = operator
                if value is None:
                    value = _value("custom", operator, row["prop_value"], "", owner_id)
                condition["value"] = value
            if row["mode"] == "never":
                condition["never"] = True
            else:
                condition["at_least"] = _typed(row["at_least"] or "1", "number", "", owner_id)
            if row["within_days"].strip():
                condition["within_days"] = _typed(row["within_days"], "number", "", owner_id)
            conditions.append(condition)
        else:
            name = row["field"]
            if name == "custom":
                name = CUSTOM_PREFIX + row["custom"].strip()
            spec = field_spec(name)
            operator, value = BUILDER_OPERATORS.get(row["operator"], (row["operator"], None))
            condition = {"field": name, "operator": operator}
            if value is None:
                value = _value(spec.kind if spec else "text", operator, row["value"], row["value2"], owner_id)
            condition["value"] = value
            conditions.append(condition)
    return {"match": match, "conditions": conditions}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def rows_from_definition(definition: Mapping) -> list[dict]:
    rows = []
    for condition in definition.get("conditions") or []:
        row = dict.fromkeys(ROW_KEYS, "")
        if "behaviour" in condition:
            row.update(type="behaviour", behaviour=condition["behaviour"], mode="at_least", at_least="1")
            if condition.get("never"):
                row["mode"] = "never"
            elif condition.get("at_least"):
                row["at_least"] = str(condition["at_least"])
            if condition.get("within_days"):
                row["within_days"] = str(condition["within_days"])
            if condition.get("property"):
                operator = condition.get("operator", "")
                if operator == "present":
                    operator = "present" if condition.get("value") else "empty"
                row.update(property=condition["property"], prop_operator=operator)
                if operator not in ("present", "empty"):
                    row["prop_value"] = _text(condition.get("value"))
        else:
            operator, value = condition.get("operator", ""), condition.get("value")
            name = condition.get("field", "")
            row.update(type="field", field=name, operator=operator)
            if name.startswith(CUSTOM_PREFIX):
                row.update(field="custom", custom=name[len(CUSTOM_PREFIX) :])
            if operator == "present":
                row["operator"] = "present" if value else "empty"
            elif operator == "between" and isinstance(value, list) and len(value) == 2:
                row.update(value=_text(value[0]), value2=_text(value[1]))
            else:
                row["value"] = _text(value)
        rows.append(row)
    return rows


def definition_from_filters(filters: LeadFilters, user) -> dict:
    """The leads list's filters as a segment definition (all of them must hold). A text search
    and a funnel drill-down have no segment condition; they are refused with a message."""
    if filters.q:
        raise DomainError("A text search cannot be saved as a segment; use the other filters.")
    if filters.entered:
        raise DomainError("A funnel drill-down (entered a stage in a period) cannot be saved as a segment.")
    conditions: list[dict] = []
    if filters.segment:
        base = Segment.objects.filter(pk=filters.segment).first()
        if base is None or base.kind != Segment.Kind.SMART or (base.definition or {}).get("match") == "any":
            raise DomainError("Only a smart segment matching all its conditions can be narrowed into a new one.")
        conditions += base.definition["conditions"]
    if filters.stage:
        conditions.append({"field": "stage", "operator": "in", "value": filters.stage})
    if filters.owner == "none":
        conditions.append({"field": "owner", "operator": "present", "value": False})
    elif filters.owner:
        owner = user.pk if filters.owner == "me" else int(filters.owner)
        conditions.append({"field": "owner", "operator": "equals", "value": owner})
    if filters.score_min is not None:
        conditions.append({"field": "score", "operator": "gte", "value": filters.score_min})
    if filters.score_max is not None:
        conditions.append({"field": "score", "operator": "lte", "value": filters.score_max})
    for name, value in (("source", filters.source), ("campaign", filters.campaign)):
        if value:
            conditions.append({"field": name, "operator": "equals", "value": value})
    if filters.channel:
        conditions.append({"field": "channel", "operator": "equals", "value": filters.channel})
    if filters.form:
        conditions.append({"field": "form", "operator": "equals", "value": filters.form})
    if filters.created_from:
        conditions.append({"field": "created_at", "operator": "gte", "value": filters.created_from.isoformat()})
    if filters.created_to:
        conditions.append({"field": "created_at", "operator": "lte", "value": filters.created_to.isoformat()})
    if not conditions:
        raise DomainError("Pick some filters first: a segment of every lead is not worth saving.")
    return {"match": "all", "conditions": conditions}

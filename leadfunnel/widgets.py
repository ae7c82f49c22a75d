"""The condition builder: rows of field / operator / value, or interaction type with an optional
property match, instead of JSON typed into a page.

One widget for every page that edits conditions (sequence goals and branches, back-test rule
changes; segment conditions can take it as it is). It knows the *shape* of a condition — the
scoring-rule condition shape — and nothing of any app: the vocabulary (fields, operators,
interaction types, stages) comes from the form that uses it, and the rules are checked by the
app's own validators, so a page refuses a bad row with the API's message.

Shapes produced (the API's): ``{"field", "operator", "value"}`` for a lead field,
``{"interaction_type"}`` or ``{"interaction_type", "property", "operator", "value"}`` for an
interaction, ``{"stage"}`` for a stage. Rows post as parallel lists named
``<name>-<part>`` (one entry per row, every part for every row), so an added row needs no
renumbering; :func:`condition_from_row` reads one row whatever the prefix.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django import forms

PARTS = ("kind", "field", "interaction_type", "property", "operator", "value", "stage")
KIND_LABELS = {"profile": "Lead field", "interaction": "Interaction", "stage": "Stage is"}
NO_VALUE_OPERATORS = frozenset({"present", "absent"})


@dataclass(frozen=True)
class ConditionVocabulary:
    """What a builder offers: kinds of condition (``profile``, ``interaction``, ``stage``), lead
    fields, operators, interaction types and stages, each as the API spells them."""

    kinds: tuple[str, ...]
    fields: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    interaction_types: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()

    def kind_choices(self) -> list[tuple[str, str]]:
        return [(kind, KIND_LABELS[kind]) for kind in self.kinds]


def parse_value(raw: str, operator: str) -> Any:
    """Typed text → the value the API stores: a list for ``in`` (comma-separated), a number or
    true/false where the text is one, else the text. Nothing for present/absent."""
    raw = (raw or "").strip()
    if operator in NO_VALUE_OPERATORS:
        return None
    if operator == "in":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        number = json.loads(raw)
    except ValueError:
        return raw
    return number if isinstance(number, int | float) and not isinstance(number, bool) else raw


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def row_is_blank(row: Mapping[str, str]) -> bool:
    return not any((row.get(part) or "").strip() for part in PARTS if part not in ("kind", "operator"))


def condition_from_row(row: Mapping[str, str]) -> dict:
    """One posted row → a condition in the API's shape (not validated: the app's validator does that)."""
    kind = (row.get("kind") or "").strip()
    operator = (row.get("operator") or "").strip() or "equals"
    if kind == "stage":
        return {"stage": (row.get("stage") or "").strip()}
    if kind == "interaction":
        condition: dict[str, Any] = {"interaction_type": (row.get("interaction_type") or "").strip()}
        prop = (row.get("property") or "").strip()
        if prop:
            condition["property"] = prop
            condition["operator"] = operator
            if operator not in NO_VALUE_OPERATORS:
                condition["value"] = parse_value(row.get("value", ""), operator)
        return condition
    condition = {"field": (row.get("field") or "").strip(), "operator": operator}
    if operator not in NO_VALUE_OPERATORS:
        condition["value"] = parse_value(row.get("value", ""), operator)
    return condition


def condition_to_row(condition: Mapping[str, Any] | None) -> dict[str, str]:
    """A stored condition → the row that shows it (the inverse of :func:`condition_from_row`)."""
    row = dict.fromkeys(PARTS, "")
    if not isinstance(condition, Mapping):
        row["kind"] = "profile"
        return row
    if "interaction_type" in condition:
        row["kind"] = "interaction"
        row["interaction_type"] = str(condition["interaction_type"])
        row["property"] = str(condition.get("property") or "")
    elif "field" in condition:
        row["kind"] = "profile"
        row["field"] = str(condition["field"])
    elif "stage" in condition:
        row["kind"] = "stage"
        row["stage"] = str(condition["stage"])
    row["operator"] = str(condition.get("operator") or "")
    row["value"] = value_text(condition.get("value"))
    return row


def rows_from_post(data, prefix: str) -> list[dict[str, str]]:
    """The rows posted under ``prefix`` (parallel lists ``<prefix>-<part>``), in order."""
    lists = {part: data.getlist(f"{prefix}-{part}") if hasattr(data, "getlist") else [] for part in PARTS}
    count = len(lists["kind"])
    return [{part: (lists[part][i] if i < len(lists[part]) else "") for part in PARTS} for i in range(count)]


class ConditionListWidget(forms.Widget):
    """A list of condition rows with add / remove (``single=True``: exactly one row, no buttons).

    Needs ``static/js/condition_builder.js`` on the page (shows each row's parts for its kind,
    adds and removes rows)."""

    template_name = "leadfunnel/widgets/condition_builder.html"

    class Media:
        js = ("js/condition_builder.js",)

    def __init__(self, vocabulary: ConditionVocabulary, *, add_label: str = "+ Add a condition", attrs=None):
        super().__init__(attrs)
        self.vocabulary = vocabulary
        self.add_label = add_label

    def value_from_datadict(self, data, files, name):
        return rows_from_post(data, name)

    def value_omitted_from_data(self, data, files, name) -> bool:
        return False  # no rows posted = no conditions

    def format_value(self, value):
        return value

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"].update(
            rows=_as_rows(value),
            blank=condition_to_row(None) | {"kind": self.vocabulary.kinds[0]},
            vocab=self.vocabulary,
            add_label=self.add_label,
        )
        return context


def _as_rows(value) -> list[dict[str, str]]:
    """Rows to show: posted rows as they were typed, stored conditions (a list, or JSON text) as rows."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            value = []
    rows = []
    for item in value or []:
        if isinstance(item, Mapping) and "kind" in item and set(item) <= set(PARTS):
            rows.append({part: str(item.get(part) or "") for part in PARTS})
        else:
            rows.append(condition_to_row(item))
    return rows


class ConditionListField(forms.Field):
    """Rows → a list of conditions in the API's shape; blank rows are dropped. Shape only: the
    owning form checks the conditions with its app's validator (the API's messages)."""

    def __init__(self, *, vocabulary: ConditionVocabulary, add_label: str = "+ Add a condition", **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(widget=ConditionListWidget(vocabulary, add_label=add_label), **kwargs)

    def to_python(self, value) -> list[dict]:
        if isinstance(value, str) or value is None:
            return []
        return [condition_from_row(row) for row in _as_rows(value) if not row_is_blank(row)]

    def has_changed(self, initial, data) -> bool:
        return True


def conditions_to_rows(conditions: Iterable[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    return [condition_to_row(c) for c in conditions or []]


def condition_text(condition: Mapping[str, Any] | None) -> str:
    """A condition as a marketer reads it: "page_view where url contains /pricing", "score gte 60"."""
    if not isinstance(condition, Mapping):
        return "—"
    row = condition_to_row(condition)
    match = row["operator"] or "equals"
    value = "" if match in NO_VALUE_OPERATORS else f" {row['value']}"
    if row["kind"] == "stage":
        return f"stage is {row['stage']}"
    if row["kind"] == "interaction":
        if not row["property"]:
            return row["interaction_type"]
        return f"{row['interaction_type']} where {row['property']} {match}{value}"
    return f"{row['field']} {match}{value}"

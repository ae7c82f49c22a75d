"""How a rule's operator compares an actual value with the rule's value (case-insensitive
text, lenient numbers and booleans): one definition, so scoring rules, the engine's prepared
matchers (:func:`compile_matcher`) and nurture conditions cannot drift apart."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

OPERATORS = ("equals", "in", "contains", "endswith", "gte", "lte", "present", "regex")

# Values longer than this are cut before a regex sees them (bounded work per match).
REGEX_MAX_INPUT = 2000


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {} or (isinstance(value, str) and not value.strip())


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


_TRUE_STRINGS = frozenset({"true", "1", "yes", "on", "y"})
_FALSE_STRINGS = frozenset({"false", "0", "no", "off", "n", ""})


def _equals(actual: Any, expected: Any) -> bool:
    if actual is None:
        return expected is None
    if isinstance(expected, bool):
        if isinstance(actual, bool):
            return actual is expected
        if isinstance(actual, str):
            low = actual.strip().lower()
            return low in _TRUE_STRINGS if expected else low in _FALSE_STRINGS
        if isinstance(actual, (int, float)):
            return bool(actual) is expected
        return False
    if isinstance(expected, (int, float)):
        number = _to_number(actual)
        return number is not None and number == float(expected)
    if isinstance(expected, str):
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            number = _to_number(expected)
            return number is not None and number == float(actual)
        return str(actual).strip().lower() == expected.strip().lower()
    return actual == expected


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def value_matches(actual: Any, operator: str, expected: Any) -> bool:
    """Does ``actual`` satisfy ``operator`` with ``expected``? Strings compare case-insensitively."""
    if operator == "present":
        present = not _is_blank(actual) and actual is not False
        return present if expected in (None, True, "true", 1) else not present
    if operator == "equals":
        return _equals(actual, expected)
    if operator == "in":
        return any(_equals(actual, item) for item in _as_list(expected))
    if actual is None:
        return False
    if operator == "contains":
        needles = _as_list(expected)
        if isinstance(actual, (list, tuple)):
            return any(_equals(item, needle) for item in actual for needle in needles)
        if isinstance(actual, dict):
            return any(str(needle) in actual for needle in needles)
        haystack = str(actual).lower()
        return any(str(needle).lower() in haystack for needle in needles if needle is not None)
    if operator == "endswith":
        text = str(actual).strip().lower()
        return any(text.endswith(str(suffix).lower()) for suffix in _as_list(expected) if suffix is not None)
    if operator in ("gte", "lte"):
        number, bound = _to_number(actual), _to_number(expected)
        if number is None or bound is None:
            return False
        return number >= bound if operator == "gte" else number <= bound
    if operator == "regex":
        if not isinstance(expected, str):
            return False
        return _compiled(expected).search(str(actual)[:REGEX_MAX_INPUT]) is not None
    raise ValueError(f"unknown operator {operator!r}")


def compile_matcher(operator: str, expected: Any):
    """A function ``actual -> bool`` equivalent to ``value_matches(actual, operator, expected)``,
    with the expected value prepared once (lower-cased needles, compiled regex, parsed bound).
    The engine uses it on hot paths; unit tests check it agrees with :func:`value_matches`."""
    operator = operator or "present"
    if operator == "contains":
        needles = _as_list(expected)
        if needles and all(isinstance(n, str) for n in needles):
            lowered = [n.lower() for n in needles]

            def contains(actual: Any) -> bool:
                if actual is None:
                    return False
                if isinstance(actual, str):
                    haystack = actual.lower()
                    return any(n in haystack for n in lowered)
                return value_matches(actual, "contains", expected)

            return contains
    elif operator == "regex" and isinstance(expected, str):
        pattern = _compiled(expected)
        return lambda actual: actual is not None and pattern.search(str(actual)[:REGEX_MAX_INPUT]) is not None
    elif operator in ("gte", "lte"):
        bound = _to_number(expected)
        if bound is None:
            return lambda actual: False
        if operator == "gte":
            return lambda actual: actual is not None and (n := _to_number(actual)) is not None and n >= bound
        return lambda actual: actual is not None and (n := _to_number(actual)) is not None and n <= bound
    elif operator == "equals" and isinstance(expected, str):
        lowered_expected = expected.strip().lower()

        def equals(actual: Any) -> bool:
            if isinstance(actual, str):
                return actual.strip().lower() == lowered_expected
            return _equals(actual, expected)

        return equals
    return lambda actual: value_matches(actual, operator, expected)

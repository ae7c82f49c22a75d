"""Refuses regex patterns that are invalid or could take exponential time: a marketer's regex
runs on every interaction, so its parsed pattern is walked for nested repetition, huge repeat
counts and back-references before a rule or a nurture condition is stored."""

from __future__ import annotations

import re
import sre_constants
from collections.abc import Iterable
from typing import Any

try:  # Python 3.11+: the parser lives in re._parser (sre_parse is a deprecated alias).
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

REGEX_MAX_LENGTH = 300


def _walk(parsed: Iterable, inside_repeat: bool) -> str | None:
    for op, arg in parsed:
        if op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            getattr(sre_constants, "POSSESSIVE_REPEAT", None),
        ):
            low, high, sub = arg
            unbounded = high == sre_constants.MAXREPEAT or high > 1
            if inside_repeat and unbounded:
                return "nested repetition such as (a+)+ can take exponential time"
            if high != sre_constants.MAXREPEAT and high > 1000:
                return "repetition counts above 1000 are not allowed"
            problem = _walk(sub, inside_repeat or unbounded)
            if problem:
                return problem
        elif op in (sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS):
            return "back-references are not allowed"
        elif op == sre_constants.SUBPATTERN:
            problem = _walk(arg[-1], inside_repeat)
            if problem:
                return problem
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                problem = _walk(branch, inside_repeat)
                if problem:
                    return problem
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            problem = _walk(arg[1], inside_repeat)
            if problem:
                return problem
        elif op == getattr(sre_constants, "ATOMIC_GROUP", None):
            problem = _walk(arg, inside_repeat)
            if problem:
                return problem
    return None


def regex_problem(pattern: Any) -> str | None:
    """Why this pattern may not be used (invalid or potentially expensive), or None."""
    if not isinstance(pattern, str) or not pattern:
        return "A regex value must be a non-empty string."
    if len(pattern) > REGEX_MAX_LENGTH:
        return f"The regex is too long (at most {REGEX_MAX_LENGTH} characters)."
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"The regex is not valid: {exc}."
    problem = _walk(parsed, False)
    if problem:
        return f"The regex is too expensive to evaluate on every interaction: {problem}."
    return None

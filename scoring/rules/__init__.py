"""Scoring rules as pure functions: no ORM, no queries, unit-tested without a database.

A *condition* is the matching part of a scoring rule, as a plain dict:

- profile: ``{"source": "profile", "field": "title", "operator": "regex", "value": "\\\\bvp\\\\b"}``
- interaction: ``{"source": "interaction", "interaction_type": "page_view",
  "property": "url", "operator": "contains", "value": "/pricing"}`` (``property``
  and ``operator`` optional: without them any interaction of that type matches).

:func:`condition_matches` evaluates one against an interaction and/or a lead
(nurture goals and branches use it too); :func:`rule_errors` validates a rule
before it is stored; :func:`lead_profile` builds the profile dict with the
derived fields (``email_domain_kind``, ``is_role_account``, ...).

By subject:

- :mod:`.values` — the operators: comparing a value with a rule's value, prepared matchers;
- :mod:`.regex_cost` — refusing invalid or potentially expensive regex patterns;
- :mod:`.profiles` — the profile fields, the domain lists and the profile built from a lead;
- :mod:`.spec` — :class:`RuleSpec`, the immutable rule, and its description in words;
- :mod:`.matching` — a condition against an interaction or a lead;
- :mod:`.validation` — a rule's per-field error messages;
- :mod:`.arithmetic` — caps, decay, rounding and the 0-100 scores;
- :mod:`.pql` — the product-qualified-lead rule.
"""

from .arithmetic import clamp_to_cap, combined_score, decay_factor, dimension_score, round_half_up
from .matching import condition_matches, interaction_matches, profile_matches
from .pql import pql_reached
from .profiles import (
    CUSTOM_PREFIX,
    DERIVED_FIELDS,
    EMAIL_DOMAIN_KINDS,
    PROFILE_COLUMNS,
    PROFILE_FIELDS,
    DomainLists,
    _dig,
    lead_profile,
    parse_employees,
    profile_value,
)
from .regex_cost import REGEX_MAX_LENGTH, regex_problem
from .spec import RuleSpec, describe
from .validation import MAX_LIST_VALUES, OPERATORS_BY_TYPE, field_type, rule_errors
from .values import OPERATORS, REGEX_MAX_INPUT, compile_matcher, value_matches

__all__ = [
    "CUSTOM_PREFIX",
    "DERIVED_FIELDS",
    "EMAIL_DOMAIN_KINDS",
    "MAX_LIST_VALUES",
    "OPERATORS",
    "OPERATORS_BY_TYPE",
    "PROFILE_COLUMNS",
    "PROFILE_FIELDS",
    "REGEX_MAX_INPUT",
    "REGEX_MAX_LENGTH",
    "DomainLists",
    "RuleSpec",
    "_dig",  # scoring.engine digs interaction properties the way rules do
    "clamp_to_cap",
    "combined_score",
    "compile_matcher",
    "condition_matches",
    "decay_factor",
    "describe",
    "dimension_score",
    "field_type",
    "interaction_matches",
    "lead_profile",
    "parse_employees",
    "pql_reached",
    "profile_matches",
    "profile_value",
    "regex_problem",
    "round_half_up",
    "rule_errors",
    "value_matches",
]

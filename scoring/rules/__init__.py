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
"""

from __future__ import annotations

import math
import re
import sre_constants
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

try:  # Python 3.11+: the parser lives in re._parser (sre_parse is a deprecated alias).
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

from ..defaults import DISPOSABLE_DOMAINS, FREE_MAIL_DOMAINS, ROLE_ACCOUNT_PREFIXES

OPERATORS = ("equals", "in", "contains", "endswith", "gte", "lte", "present", "regex")

# Profile fields a rule may test, with their type. Derived fields are computed
# by lead_profile() from the lead and the settings' lists.
PROFILE_FIELDS: dict[str, str] = {
    "email": "str",
    "first_name": "str",
    "last_name": "str",
    "title": "str",
    "phone": "str",
    "company_name": "str",
    "company_size": "str",
    "industry": "str",
    "country": "str",
    "city": "str",
    "time_zone": "str",
    "linkedin": "str",
    "twitter": "str",
    "source": "str",
    "channel": "str",
    "utm_source": "str",
    "utm_medium": "str",
    "utm_campaign": "str",
    "first_page_url": "str",
    "tags": "list",
    "consent": "bool",
    # derived
    "email_domain": "str",
    "email_domain_kind": "choice",
    "is_role_account": "bool",
    "is_competitor": "bool",
    "is_free_mail": "bool",
    "is_disposable": "bool",
    "company_employees": "int",
    "unsubscribed": "bool",
    "email_bounced": "bool",
}
DERIVED_FIELDS = (
    "email_domain",
    "email_domain_kind",
    "is_role_account",
    "is_competitor",
    "is_free_mail",
    "is_disposable",
    "company_employees",
    "unsubscribed",
    "email_bounced",
)
EMAIL_DOMAIN_KINDS = ("business", "free", "disposable")
# Custom form fields are reachable as "custom.<key>" and take any operator.
CUSTOM_PREFIX = "custom."

OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "str": ("equals", "in", "contains", "endswith", "present", "regex"),
    "choice": ("equals", "in", "present"),
    "int": ("equals", "in", "gte", "lte", "present"),
    "bool": ("equals", "present"),
    "list": ("contains", "present"),
    "any": OPERATORS,
}

REGEX_MAX_LENGTH = 300
# Values longer than this are cut before a regex sees them (bounded work per match).
REGEX_MAX_INPUT = 2000
MAX_LIST_VALUES = 200


# --- values -------------------------------------------------------------------


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


# --- regex cost check ----------------------------------------------------------


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


# --- profiles -------------------------------------------------------------------

_PROFILE_ATTRS = (
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
    "linkedin",
    "twitter",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "first_page_url",
    "tags",
    "consent",
    "custom_fields",
    "unsubscribed_at",
    "email_bounced_at",
)
# Lead columns the profile is built from (the incremental path loads only these).
PROFILE_COLUMNS = _PROFILE_ATTRS


@dataclass(frozen=True)
class DomainLists:
    free_mail: frozenset[str] = frozenset()
    disposable: frozenset[str] = frozenset()
    role_prefixes: frozenset[str] = frozenset()
    competitors: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any) -> DomainLists:
        def norm(items: Iterable) -> frozenset[str]:
            return frozenset(str(i).strip().lower().lstrip("@") for i in (items or []) if str(i).strip())

        return cls(
            free_mail=norm(settings.free_mail_domains),
            disposable=norm(settings.disposable_domains),
            role_prefixes=frozenset(str(p).strip().lower().rstrip("@") for p in (settings.role_account_prefixes or [])),
            competitors=norm(settings.competitor_domains),
        )

    @classmethod
    def defaults(cls) -> DomainLists:

        return cls(frozenset(FREE_MAIL_DOMAINS), frozenset(DISPOSABLE_DOMAINS), frozenset(ROLE_ACCOUNT_PREFIXES))


_EMPLOYEES = re.compile(r"(\d[\d,.]*)\s*(k)?", re.IGNORECASE)


def parse_employees(size: Any) -> int | None:
    """Lower bound of a company size band: "201-1000" → 201, "1k+" → 1000, "50" → 50."""
    if isinstance(size, bool) or size is None:
        return None
    if isinstance(size, (int, float)):
        return int(size)
    match = _EMPLOYEES.search(str(size))
    if not match:
        return None
    try:
        number = float(match.group(1).replace(",", ""))
    except ValueError:
        return None
    return int(number * (1000 if match.group(2) else 1))


def _domain_matches(domain: str, domains: frozenset[str]) -> bool:
    if domain in domains:
        return True
    # Sub-domains of a listed domain count too (mail.competitor.com).
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(1, len(parts) - 1))


def lead_profile(lead: Any, lists: DomainLists | None = None) -> dict[str, Any]:
    """The lead's profile as a plain dict, with the derived fields.

    ``lead`` is a Lead instance or a mapping of its columns (see PROFILE_COLUMNS).
    """
    lists = lists or DomainLists.defaults()
    get = lead.get if isinstance(lead, Mapping) else (lambda name, default=None: getattr(lead, name, default))
    profile: dict[str, Any] = {name: get(name, None) for name in _PROFILE_ATTRS}
    email = (profile.get("email") or "").strip().lower()
    local, _, domain = email.rpartition("@")
    if domain in lists.disposable or _domain_matches(domain, lists.disposable):
        kind = "disposable"
    elif domain in lists.free_mail:
        kind = "free"
    else:
        kind = "business"
    profile.update(
        email=email,
        email_domain=domain,
        email_domain_kind=kind if domain else "",
        is_free_mail=kind == "free",
        is_disposable=kind == "disposable",
        is_role_account=bool(local) and local.split("+")[0] in lists.role_prefixes,
        is_competitor=bool(domain) and _domain_matches(domain, lists.competitors),
        company_employees=parse_employees(profile.get("company_size")),
        unsubscribed=profile.pop("unsubscribed_at", None) is not None,
        email_bounced=profile.pop("email_bounced_at", None) is not None,
    )
    profile["custom"] = profile.pop("custom_fields", None) or {}
    return profile


def profile_value(profile: Mapping[str, Any], field_name: str) -> Any:
    if field_name.startswith(CUSTOM_PREFIX):
        return _dig(profile.get("custom") or {}, field_name[len(CUSTOM_PREFIX) :])
    return profile.get(field_name)


def _dig(data: Any, path: str) -> Any:
    """Dotted lookup in nested properties: "utm.source" → data["utm"]["source"]."""
    if type(data) is not dict and not isinstance(data, Mapping):
        return None
    if path in data:
        return data[path]
    if "." not in path:
        return None
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


# --- rules --------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """An immutable copy of a rule (what the per-process cache holds)."""

    id: int
    name: str
    dimension: str
    source: str
    field: str = ""
    operator: str = ""
    value: Any = None
    interaction_type: str = ""
    property: str = ""
    points: float = 0.0
    use_channel_weight: bool = False
    max_points: float | None = None
    half_life_days: float | None = None
    blocks_mql: bool = False

    @classmethod
    def from_obj(cls, obj: Any) -> RuleSpec:
        get = obj.get if isinstance(obj, Mapping) else (lambda name, default=None: getattr(obj, name, default))
        return cls(
            id=get("id", 0) or 0,
            name=get("name", "") or "",
            dimension=get("dimension", "engagement") or "engagement",
            source=get("source", "") or "",
            field=get("field", "") or "",
            operator=get("operator", "") or "",
            value=get("value", None),
            interaction_type=get("interaction_type", "") or "",
            property=get("property", "") or "",
            points=float(get("points", 0) or 0),
            use_channel_weight=bool(get("use_channel_weight", False)),
            max_points=None if get("max_points", None) is None else float(get("max_points")),
            half_life_days=None if get("half_life_days", None) in (None, 0) else float(get("half_life_days")),
            blocks_mql=bool(get("blocks_mql", False)),
        )


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


# --- validation -----------------------------------------------------------------


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


# --- arithmetic (caps, decay, the score formula) ------------------------------------


def clamp_to_cap(total: float, cap: float | None) -> float:
    """A running total limited by the rule's cap (a negative cap is a floor)."""
    if cap is None:
        return total
    return min(total, cap) if cap > 0 else max(total, cap)


def decay_factor(half_life_days: float | None, since: datetime | None, until: datetime) -> float:
    if not half_life_days or since is None:
        return 1.0
    days = (until - since).total_seconds() / 86400.0
    if days <= 0:
        return 1.0
    return 0.5 ** (days / half_life_days)


def round_half_up(value: float) -> int:
    """Same rounding in Python and in SQL (FLOOR(x + 0.5)); Python's round() is banker's."""
    return int(math.floor(value + 0.5))


def dimension_score(points: float) -> int:
    """A dimension's 0–100 score: its points, rounded and clamped to 0..100."""
    return max(0, min(100, round_half_up(points)))


def combined_score(fit_score: int, engagement_score: int, *, fit_weight: int, engagement_weight: int) -> int:
    total = fit_weight + engagement_weight
    if total <= 0:
        return 0
    return max(0, min(100, round_half_up((fit_weight * fit_score + engagement_weight * engagement_score) / total)))


def pql_reached(rule: Mapping, *, trial_times: Iterable[datetime], usage_times: Iterable[datetime]) -> bool:
    """PQL rule: a trial started, then at least ``min_usage`` usage events within ``within_days`` of it."""
    if not rule or not rule.get("enabled"):
        return False
    min_usage = int(rule.get("min_usage") or 0)
    window = timedelta(days=float(rule.get("within_days") or 0))
    usage = sorted(usage_times)
    for start in trial_times:
        count = sum(1 for at in usage if start <= at <= start + window)
        if count >= min_usage:
            return True
    return False


def describe(rule: RuleSpec) -> str:
    """The rule in words, for the contribution's reason."""
    if rule.source == "profile":
        what = f"{rule.field} {_op_words(rule.operator, rule.value)}"
    elif rule.property:
        what = f"{rule.interaction_type} with {rule.property} {_op_words(rule.operator or 'present', rule.value)}"
    else:
        what = rule.interaction_type
    return f"{rule.name} ({what})"


def _op_words(operator: str, value: Any) -> str:
    if operator == "present":
        return "is filled in" if value in (None, True, "true", 1) else "is empty"
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    words = {
        "equals": "is",
        "in": "is one of",
        "contains": "contains",
        "endswith": "ends with",
        "gte": "≥",
        "lte": "≤",
        "regex": "matches",
    }
    return f"{words.get(operator, operator)} {shown}"

"""Back-test candidates: the rule set and settings to compare with the current ones, checked.

A candidate is a whole rule set (``rules``) or the current rules with a diff
(``rules_diff``), plus setting overrides. It becomes a :class:`~scoring.selectors.Ruleset`,
the engine's input, without touching the stored rules.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from leadfunnel.errors import ValidationFailed
from leads.models import InteractionType

from ...models import ScoringRule
from ...rules import DomainLists, RuleSpec, field_type, rule_errors
from ...selectors import Ruleset, ruleset_get, scoring_settings_get
from ...services import configuration

SETTING_FIELDS = {
    "mql_threshold": int,
    "required_profile_fields": list,
    "fit_weight": int,
    "engagement_weight": int,
    "free_mail_domains": list,
    "disposable_domains": list,
    "role_account_prefixes": list,
    "competitor_domains": list,
}
# The rule fields a back-test candidate may set (a rule's description does not score).
RULE_FIELDS = tuple(name for name in configuration.RULE_FIELDS if name != "description")


def _rule_dict(rule: ScoringRule) -> dict:
    data = {name: getattr(rule, name) for name in RULE_FIELDS}
    data["id"] = rule.pk
    return data


def current_settings_dict() -> dict:
    row = scoring_settings_get()
    data = {name: getattr(row, name) for name in SETTING_FIELDS}
    data["sales_ready_threshold"] = row.sales_ready_threshold
    data["pql_rule"] = row.pql_rule
    data["version"] = row.version
    return data


def _check_settings(overrides: Any) -> dict:
    if overrides in (None, ""):
        return {}
    if not isinstance(overrides, dict):
        raise ValidationFailed("settings must be an object.", fields={"settings": ["Must be an object."]})
    errors = {}
    for name, value in overrides.items():
        kind = SETTING_FIELDS.get(name)
        if kind is None:
            errors[name] = [f"Unknown setting; use one of: {', '.join(SETTING_FIELDS)}."]
        elif kind is int and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000):
            errors[name] = ["Must be a whole number between 0 and 1000."]
        elif kind is list and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            errors[name] = ["Must be a list of texts."]
    if "required_profile_fields" in overrides and "required_profile_fields" not in errors:
        unknown = [f for f in overrides["required_profile_fields"] if field_type(f) is None]
        if unknown:
            errors["required_profile_fields"] = [f"Unknown profile field(s): {', '.join(unknown)}."]
    if errors:
        raise ValidationFailed(
            f"settings: {next(iter(errors))}: {next(iter(errors.values()))[0]}", fields={"settings": errors}
        )
    return overrides


def _check_rule(data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValidationFailed(f"{where} must be an object.", fields={where: ["Must be an object."]})
    unknown = set(data) - set(RULE_FIELDS) - {"id"}
    if unknown:
        raise ValidationFailed(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}.", fields={where: ["Unknown fields."]}
        )
    errors = rule_errors(data, interaction_types=InteractionType.values)
    if not data.get("name"):
        errors["name"] = "A rule needs a name."
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{where}.{first}: {errors[first]}", fields={where: errors})
    return data


def candidate_rules(*, rules: Any = None, rules_diff: Any = None) -> list[dict]:
    """The candidate rule list: a full replacement (``rules``) or the current rules with a diff.

    ``rules_diff``: ``{"add": [rule, ...], "update": [{"id": n, <fields>}, ...], "remove": [id, ...]}``.
    New rules get negative ids so they never collide with stored ones.
    """
    if rules is not None and rules_diff is not None:
        raise ValidationFailed("Give either rules or rules_diff, not both.")
    if rules is not None:
        if not isinstance(rules, list) or len(rules) > 500:
            raise ValidationFailed("rules must be a list of at most 500 rules.", fields={"rules": ["Invalid."]})
        out = []
        for i, data in enumerate(rules):
            checked = dict(_check_rule(data, f"rules[{i}]"))
            checked["id"] = -(i + 1)
            out.append(checked)
        return out
    current = {rule.pk: _rule_dict(rule) for rule in ScoringRule.objects.order_by("id")}
    if rules_diff in (None, ""):
        return list(current.values())
    if not isinstance(rules_diff, dict) or set(rules_diff) - {"add", "update", "remove"}:
        raise ValidationFailed(
            "rules_diff is an object with add, update and/or remove.", fields={"rules_diff": ["Invalid."]}
        )
    for rule_id in rules_diff.get("remove") or []:
        if rule_id not in current:
            raise ValidationFailed(
                f"rules_diff.remove: there is no rule {rule_id}.", fields={"rules_diff": ["Unknown rule."]}
            )
        del current[rule_id]
    for i, change in enumerate(rules_diff.get("update") or []):
        if not isinstance(change, dict) or change.get("id") not in current:
            raise ValidationFailed(
                f"rules_diff.update[{i}]: give the id of an existing rule.", fields={"rules_diff": ["Unknown rule."]}
            )
        merged = {**current[change["id"]], **change}
        current[change["id"]] = _check_rule(merged, f"rules_diff.update[{i}]")
    added = []
    for i, data in enumerate(rules_diff.get("add") or []):
        checked = dict(_check_rule(data, f"rules_diff.add[{i}]"))
        checked["id"] = -(i + 1)
        added.append(checked)
    return [*current.values(), *added]


def build_ruleset(rules: list[dict], settings: dict, *, key: str) -> Ruleset:
    """A Ruleset (the engine's input) from plain rule dicts and settings, without touching the database."""
    specs = [RuleSpec.from_obj(r) for r in rules if r.get("active", True)]
    by_type: dict[str, list[RuleSpec]] = {}
    for spec in specs:
        if spec.source == "interaction":
            by_type.setdefault(spec.interaction_type, []).append(spec)

    lists = SimpleNamespace(
        free_mail_domains=settings.get("free_mail_domains"),
        disposable_domains=settings.get("disposable_domains"),
        role_account_prefixes=settings.get("role_account_prefixes"),
        competitor_domains=settings.get("competitor_domains"),
    )
    return Ruleset(
        key=("backtest", key),
        profile=[s for s in specs if s.source == "profile"],
        by_type=by_type,
        by_id={s.id: s for s in specs},
        lists=DomainLists.from_settings(lists),
        mql_threshold=int(settings["mql_threshold"]),
        sales_ready_threshold=settings.get("sales_ready_threshold"),
        required_profile_fields=list(settings.get("required_profile_fields") or []),
        fit_weight=int(settings["fit_weight"]),
        engagement_weight=int(settings["engagement_weight"]),
        pql_rule=dict(settings.get("pql_rule") or {}),
        version=int(settings.get("version") or 0),
        blocking_ids=frozenset(s.id for s in specs if s.blocks_mql),
    )


def current_ruleset() -> Ruleset:
    return ruleset_get()


def candidate_ruleset(*, rules: Any = None, rules_diff: Any = None, settings: Any = None) -> tuple[Ruleset, dict]:
    """(the candidate Ruleset, the plain description stored with the job)."""
    overrides = _check_settings(settings)
    rule_list = candidate_rules(rules=rules, rules_diff=rules_diff)
    merged = {**current_settings_dict(), **overrides}
    return build_ruleset(rule_list, merged, key="candidate"), {"rules": rule_list, "settings": overrides}

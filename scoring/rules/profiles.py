"""The lead's profile as rules see it: its columns plus the fields derived from them (email
domain kind, role account, competitor, employee count, ...), computed in one place so the live
engine, the full recompute, the backtest and conditions all test the same profile."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..defaults import DISPOSABLE_DOMAINS, FREE_MAIL_DOMAINS, ROLE_ACCOUNT_PREFIXES

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

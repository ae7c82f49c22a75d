"""Territory rules of sales reps, as plain data and pure functions (no ORM).

A rep's ``territories`` are countries (ISO codes such as ``DE`` or names such as ``Germany``) or
region shorthands (``DACH``, ``Nordics`` … see :data:`REGIONS`, expanded to their countries); a
rep's ``company_sizes`` are company-size bands (:data:`SIZE_BANDS`). A rep **matches** a lead
when the rep has at least one rule and every kind of rule the rep has matches: the lead's country
is in the rep's territories (when the rep has territories) and the lead's company size is in the
rep's bands (when the rep has bands). The lead's own ``country`` / ``company_size`` count first,
its company's ``country`` / ``size_band`` when the lead's are blank. Comparison ignores case.

The round-robin (``leads.services.routing.RepRoster``) gives a lead to the matching reps first,
and to everyone when no free rep matches (or no rep has rules).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from leadfunnel.errors import ValidationFailed

# Region shorthands a territory may name, and the ISO country codes they stand for.
REGIONS: dict[str, tuple[str, ...]] = {
    "DACH": ("de", "at", "ch"),
    "Benelux": ("be", "nl", "lu"),
    "Nordics": ("dk", "fi", "is", "no", "se"),
    "UKI": ("gb", "uk", "ie"),
    "Iberia": ("es", "pt"),
    "NA": ("us", "ca"),
    "LATAM": ("mx", "br", "ar", "cl", "co", "pe", "uy"),
    "ANZ": ("au", "nz"),
}
_REGIONS_BY_NAME = {name.lower(): countries for name, countries in REGIONS.items()}

# The company-size bands the product uses (forms, demo data, import templates).
SIZE_BANDS: tuple[str, ...] = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")

MAX_TERRITORIES = 200
MAX_TERRITORY_LENGTH = 100


def _norm(value: str | None) -> str:
    return (value or "").strip().lower()


def territories_clean(values: Iterable) -> list[str]:
    """Validate a rep's territories (countries or regions): strings, trimmed, without repeats."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValidationFailed(
            "territories must be a list of countries or regions.", fields={"territories": ["Not a list."]}
        )
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ValidationFailed("Each territory must be text.", fields={"territories": ["Each territory is text."]})
        value = value.strip()
        if not value:
            continue
        if len(value) > MAX_TERRITORY_LENGTH:
            message = f"A territory is at most {MAX_TERRITORY_LENGTH} characters ({value[:20]}…)."
            raise ValidationFailed(message, fields={"territories": [message]})
        if _norm(value) not in {_norm(c) for c in cleaned}:
            cleaned.append(value)
    if len(cleaned) > MAX_TERRITORIES:
        message = f"At most {MAX_TERRITORIES} territories per rep."
        raise ValidationFailed(message, fields={"territories": [message]})
    return cleaned


def company_sizes_clean(values: Iterable) -> list[str]:
    """Validate a rep's company-size bands: each one of :data:`SIZE_BANDS`."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValidationFailed("company_sizes must be a list of size bands.", fields={"company_sizes": ["Not a list."]})
    cleaned = []
    for value in values:
        if value not in SIZE_BANDS:
            message = f"Unknown company size {value!r}; use one of {', '.join(SIZE_BANDS)}."
            raise ValidationFailed(message, fields={"company_sizes": [message]})
        if value not in cleaned:
            cleaned.append(value)
    return [band for band in SIZE_BANDS if band in cleaned]


@dataclass(frozen=True)
class TerritoryRule:
    """One rep's rules, normalised for matching."""

    countries: frozenset[str]
    sizes: frozenset[str]

    @classmethod
    def of(cls, territories: Iterable[str] | None, company_sizes: Iterable[str] | None) -> "TerritoryRule":
        countries: set[str] = set()
        for territory in territories or ():
            name = _norm(territory)
            countries.update(_REGIONS_BY_NAME.get(name, (name,)))
        return cls(countries=frozenset(countries), sizes=frozenset(_norm(s) for s in company_sizes or ()))

    @property
    def configured(self) -> bool:
        return bool(self.countries or self.sizes)

    def matches(self, *, country: str, company_size: str) -> bool:
        if not self.configured:
            return False
        if self.countries and _norm(country) not in self.countries:
            return False
        return not self.sizes or _norm(company_size) in self.sizes


def lead_routing_facts(row: dict) -> tuple[str, str]:
    """(country, company size) of a lead read with :data:`ROUTING_FIELDS`: its own, else its company's."""
    return (
        row.get("country") or row.get("company__country") or "",
        row.get("company_size") or row.get("company__size_band") or "",
    )


# The lead columns (and the company's) routing reads, added to the locked read of a batch.
ROUTING_FIELDS = ("country", "company_size", "company__country", "company__size_band")

"""Reads: pairs of leads that are probably one person (the possible-duplicates list), found in
SQL by shared keys (``leads.sql.possible_duplicates``): same first and last name at the same
company, same phone number (its digits), or email variants (``+tags``; dots and
googlemail.com for Gmail)."""

from dataclasses import dataclass

from . import sql
from .models import Lead

REASONS = {
    "same_name_and_company": "Same name and company",
    "same_phone": "Same phone number",
    "email_variant": "Email variant (+tag, dots)",
}
DUPLICATES_PAGE_SIZE = 50


@dataclass
class DuplicatePair:
    first: Lead  # the older record: the default survivor
    second: Lead
    reasons: list[str]

    @property
    def reason_labels(self) -> list[str]:
        return [REASONS.get(r, r) for r in self.reasons]


def duplicate_pairs(
    *, lead_id: int | None = None, limit: int = DUPLICATES_PAGE_SIZE, offset: int = 0
) -> tuple[list[DuplicatePair], int]:
    """A page of possible duplicate pairs (newest first) and the total: two queries."""
    rows, total = sql.possible_duplicates(lead_id=lead_id, limit=limit, offset=offset)
    ids = {i for a, b, _ in rows for i in (a, b)}
    leads = Lead.objects.select_related("company").in_bulk(ids) if ids else {}
    pairs = [DuplicatePair(leads[a], leads[b], reasons) for a, b, reasons in rows if a in leads and b in leads]
    return pairs, total

"""The suppression list: addresses marketing email must never go to, whoever holds them.

Addresses are stored as an HMAC-SHA256 (keyed from SECRET_KEY) of the lower-cased address; both
functions are set-based (one statement for any number of addresses).
"""

import hashlib
import hmac

from django.conf import settings

from ..models import Suppression, SuppressionReason


def email_hash(email: str) -> str:
    key = hashlib.sha256(f"leadfunnel-suppression:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def suppression_add(*, emails: list[str], reason: str, actor=None) -> int:
    """Suppress these addresses (already suppressed ones keep their first reason). Returns how
    many were newly added."""
    if reason not in SuppressionReason.values:
        raise ValueError(f"Unknown suppression reason {reason!r}")
    hashes = {email_hash(e) for e in emails if e and e.strip()}
    if not hashes:
        return 0
    before = Suppression.objects.filter(email_hash__in=hashes).count()
    Suppression.objects.bulk_create(
        [Suppression(email_hash=h, reason=reason) for h in sorted(hashes)], ignore_conflicts=True
    )
    return len(hashes) - before


def suppressed_emails(emails: list[str]) -> set[str]:
    """The given addresses that are suppressed (as given), in one query."""
    by_hash: dict[str, list[str]] = {}
    for email in emails:
        if email:
            by_hash.setdefault(email_hash(email), []).append(email)
    if not by_hash:
        return set()
    found = Suppression.objects.filter(email_hash__in=list(by_hash)).values_list("email_hash", flat=True)
    return {email for h in found for email in by_hash[h]}

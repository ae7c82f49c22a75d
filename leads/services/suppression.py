"""The suppression list: addresses no marketing email may go to, whatever their lead row says.

Unsubscribes, hard bounces, complaints and erasures add to it; admins add and remove by hand.
Only a keyed hash of the normalised (trimmed, lower-cased) address is stored: HMAC-SHA256 with a
key derived from SECRET_KEY (Django's ``salted_hmac``), so the list names nobody in clear and an
erased person's address is not kept. Changing SECRET_KEY empties the list in effect (every hash
changes): keep it, or rotate with SECRET_KEY_FALLBACKS and re-add the list.
"""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from leadfunnel.audit import audit_record, audit_record_many
from leadfunnel.errors import NotFound, ValidationFailed
from leadfunnel.sql import bulk_insert

from ..models import Suppression, SuppressionReason

_KEY_SALT = "leadfunnel.suppression"


def email_normalise(email: str) -> str:
    return (email or "").strip().lower()


def suppression_hash(email: str) -> str:
    """The stored form of an address: hex HMAC-SHA256 of the normalised address."""
    return salted_hmac(_KEY_SALT, email_normalise(email), algorithm="sha256").hexdigest()


def email_mask(email: str) -> str:
    """``jane@example.com`` → ``j***@example.com`` (what people see of a suppressed address)."""
    local, at, domain = email_normalise(email).partition("@")
    if not at:
        return (local[:1] + "***") if local else ""
    return f"{local[:1]}***@{domain}"[:254]


def _hashes(emails: Iterable[str]) -> dict[str, str]:
    """{hash: normalised address} of the non-blank addresses."""
    found: dict[str, str] = {}
    for email in emails:
        normal = email_normalise(email) if isinstance(email, str) else ""
        if normal:
            found.setdefault(suppression_hash(normal), normal)
    return found


def suppression_add(*, emails: list[str], reason: str, actor=None) -> int:
    """Put addresses on the list (idempotent). Returns how many were new.

    ``reason`` is one of :class:`SuppressionReason`. An address already listed keeps its first
    reason; an erasure blanks its hint (the masked address) so nothing of it stays in clear.
    Queries: one insert, plus one update for ``erased`` and one audit insert for people.
    """
    if reason not in SuppressionReason.values:
        raise ValidationFailed(
            f"reason: Must be one of {', '.join(SuppressionReason.values)}.",
            fields={"reason": [f"Must be one of {', '.join(SuppressionReason.values)}."]},
        )
    by_hash = _hashes(emails)
    if not by_hash:
        return 0
    erased = reason == SuppressionReason.ERASED
    who = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    now = timezone.now()
    with transaction.atomic():
        inserted = bulk_insert(
            Suppression,
            ("email_hash", "hint", "reason", "created_at", "created_by_id"),
            [
                (digest, "" if erased else email_mask(email), reason, now, who.pk if who else None)
                for digest, email in sorted(by_hash.items())
            ],
            returning=("id", "hint"),
            on_conflict="(email_hash) DO NOTHING",
        )
        if erased:
            Suppression.objects.filter(email_hash__in=list(by_hash)).exclude(hint="").update(hint="")
        if who is not None and inserted:
            audit_record_many(
                actor=who,
                action="suppression.added",
                object_type="leads.suppression",
                items=[(str(pk), {"reason": reason, "hint": hint}) for pk, hint in inserted],
            )
    return len(inserted)


def suppression_remove(*, suppression_id: int, actor) -> None:
    """Take an address off the list (admins): marketing email may reach it again."""
    with transaction.atomic():
        row = Suppression.objects.select_for_update().filter(pk=suppression_id).first()
        if row is None:
            raise NotFound(f"No suppression with id {suppression_id}.")
        audit_record(
            actor=actor,
            action="suppression.removed",
            obj=row,
            changes={"reason": row.reason, "hint": row.hint, "added_at": row.created_at.isoformat()},
        )
        row.delete()


def suppressed_emails(emails: list[str]) -> set[str]:
    """The given addresses (as given) that are on the list. One query (none for an empty list)."""
    given: dict[str, list[str]] = {}
    for email in emails:
        if isinstance(email, str) and email_normalise(email):
            given.setdefault(suppression_hash(email), []).append(email)
    if not given:
        return set()
    listed = Suppression.objects.filter(email_hash__in=list(given)).values_list("email_hash", flat=True)
    return {email for digest in listed for email in given[digest]}

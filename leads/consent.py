"""Marketing consent: the columns each way of giving or withdrawing it writes, and who may be sent
marketing messages (the one check the nurture executor makes before every send).

``CONSENT_REQUIRED_FOR_MARKETING`` decides what marketing needs: ``opt_in`` (default: an explicit
opt-in, from a form, an import, the API or a confirmed double opt-in) or ``none`` (legitimate
interest: anyone who has not withdrawn). A pending double opt-in and a withdrawal block marketing
either way, and so does the suppression list. Messages to the lead's own rep are not marketing.
"""

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings

from .models import ConsentStatus, Lead
from .services.suppression import suppressed_emails

REQUIREMENTS = ("opt_in", "none")
NO_CONSENT = "no_consent"
SUPPRESSED = "suppressed"
# Statuses that never receive marketing, whatever the requirement.
BLOCKING = frozenset({ConsentStatus.PENDING, ConsentStatus.OPT_OUT})


def consent_required() -> str:
    return settings.CONSENT_REQUIRED_FOR_MARKETING


def consent_fields(status: str, *, source: str, at: datetime | None, ip: str | None = None) -> dict:
    """The lead's consent columns for a new status (``consent`` stays the boolean "opted in")."""
    return {
        "consent_status": status,
        "consent": status == ConsentStatus.OPT_IN,
        "consent_at": at,
        "consent_source": source[:200],
        "consent_ip": ip,
    }


def status_from_flag(flag: bool, *, current: str = ConsentStatus.NONE) -> str:
    """What the backward-compatible ``consent`` boolean means: true opts in; false withdraws a
    consent the lead had (or had asked to give), and otherwise leaves none."""
    if flag:
        return ConsentStatus.OPT_IN
    if current in (ConsentStatus.OPT_IN, ConsentStatus.PENDING, ConsentStatus.OPT_OUT):
        return ConsentStatus.OPT_OUT
    return ConsentStatus.NONE


def consent_allows_marketing(status: str, *, required: str | None = None) -> bool:
    required = required or consent_required()
    if status in BLOCKING:
        return False
    return status == ConsentStatus.OPT_IN or required == "none"


def marketing_refusals(leads: Iterable[Lead], *, channel: str = "email") -> dict[int, str]:
    """Why each of these leads may not be sent a marketing message now (lead id → ``no_consent`` or
    ``suppressed``); leads missing from the answer may be. One query for the whole batch (the
    suppression list, for email), none for consent: it is read from the leads given."""
    required = consent_required()
    refusals: dict[int, str] = {}
    reachable: list[Lead] = []
    for lead in leads:
        if not consent_allows_marketing(lead.consent_status, required=required):
            refusals[lead.pk] = NO_CONSENT
        else:
            reachable.append(lead)
    if channel == "email" and reachable:
        suppressed = suppressed_emails(sorted({lead.email for lead in reachable}))
        for lead in reachable:
            if lead.email in suppressed:
                refusals[lead.pk] = SUPPRESSED
    return refusals

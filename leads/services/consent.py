"""Consent writes: a double opt-in's request, its one confirmation email and its confirmation, and
withdrawals (unsubscribes, complaints).

A form with ``double_opt_in`` leaves the lead's consent ``pending`` and publishes
``lead.consent_requested``; the outbox handler writes a :class:`ConsentRequest` (one open request
per lead, so one email) and asks for it to be sent after commit; :func:`consent_request_send`
claims it with a compare-and-swap and sends it outside any transaction. The email carries a signed
link (``django.core.signing``, valid ``CONSENT_CONFIRM_MAX_AGE_DAYS``); its public page asks for a
click (link scanners only GET) and :func:`consent_confirm` records the time and IP: only then may
marketing go out (``leads.consent``). An address on the suppression list gets no confirmation
email: its request is given up at once (``last_error`` says why) and never claimed again.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.html import escape

from leadfunnel.errors import DomainError

from ..consent import consent_fields
from ..models import ConsentRequest, ConsentStatus, Lead
from .suppression import suppressed_emails

logger = logging.getLogger(__name__)

SALT = "leadfunnel.consent.confirm"
CLAIM_TIMEOUT = timedelta(minutes=10)
MAX_ATTEMPTS = 8
SUPPRESSED_ERROR = "Not sent: the address is on the suppression list."


class ConsentLinkInvalid(DomainError):
    status = 400
    code = "consent_link_invalid"


class ConsentLinkExpired(DomainError):
    status = 400
    code = "consent_link_expired"


# --- withdrawals ------------------------------------------------------------------------------


def leads_consent_withdraw(*, lead_ids: Iterable[int], source: str, at: datetime | None = None) -> int:
    """Record that these leads withdrew consent (an unsubscribe, a spam complaint). One statement."""
    at = at or timezone.now()
    fields = consent_fields(ConsentStatus.OPT_OUT, source=source, at=at)
    return (
        Lead.objects.filter(pk__in=list(lead_ids))
        .exclude(consent_status=ConsentStatus.OPT_OUT)
        .update(**fields, updated_at=at)
    )


# --- double opt-in ----------------------------------------------------------------------------


def consent_requests_create(*, requests: list[tuple[int, int | None]]) -> list[int]:
    """Open a confirmation request for each (lead id, form id) still pending, unless one is open
    already (a second submission sends no second email). Returns the new requests' ids."""
    lead_ids = {lead_id for lead_id, _ in requests}
    pending = set(
        Lead.objects.filter(pk__in=lead_ids, consent_status=ConsentStatus.PENDING).values_list("pk", flat=True)
    )
    open_already = set(
        ConsentRequest.objects.filter(lead_id__in=pending, confirmed_at__isnull=True).values_list("lead_id", flat=True)
    )
    created: list[int] = []
    for lead_id, form_id in dict(requests).items():
        if lead_id not in pending or lead_id in open_already:
            continue
        try:
            with transaction.atomic():
                created.append(ConsentRequest.objects.create(lead_id=lead_id, form_id=form_id).pk)
        except IntegrityError:  # a concurrent handler opened it
            continue
    return created


def consent_token(request: ConsentRequest) -> str:
    return signing.dumps({"r": request.pk, "l": request.lead_id}, salt=SALT, compress=True)


def consent_confirm_url(request: ConsentRequest) -> str:
    return f"{settings.SITE_URL}/consent/confirm/{consent_token(request)}/"


def _max_age() -> timedelta:
    return timedelta(days=settings.CONSENT_CONFIRM_MAX_AGE_DAYS)


def consent_request_from_token(token: str) -> ConsentRequest:
    """The request a link names. Raises ConsentLinkInvalid (tampered, unknown) or ConsentLinkExpired."""
    try:
        data = signing.loads(token, salt=SALT, max_age=_max_age())
    except signing.SignatureExpired:
        raise ConsentLinkExpired(
            "This confirmation link has expired. Submit the form again to get a new one."
        ) from None
    except signing.BadSignature:
        raise ConsentLinkInvalid("This confirmation link is not valid. Check that it was copied whole.") from None
    request = (
        ConsentRequest.objects.select_related("lead", "form").filter(pk=data.get("r"), lead_id=data.get("l")).first()
    )
    if request is None:
        raise ConsentLinkInvalid("This confirmation link is not valid any more.")
    return request


@transaction.atomic
def consent_confirm(*, token: str, ip: str | None) -> Lead:
    """Confirm a double opt-in from its link: the request and the lead record the time and IP, and
    the lead is opted in. Confirming twice changes nothing the second time."""
    request = consent_request_from_token(token)
    request = ConsentRequest.objects.select_for_update(of=("self",)).select_related("form").get(pk=request.pk)
    lead = Lead.objects.select_for_update().get(pk=request.lead_id)
    if request.confirmed_at is not None:
        return lead
    now = timezone.now()
    request.confirmed_at, request.confirmed_ip = now, ip
    request.save(update_fields=["confirmed_at", "confirmed_ip"])
    slug = request.form.slug if request.form else ""
    fields = consent_fields(ConsentStatus.OPT_IN, source=f"double_opt_in:form:{slug}", at=now, ip=ip)
    Lead.objects.filter(pk=lead.pk).update(**fields, updated_at=now)
    for name, value in fields.items():
        setattr(lead, name, value)
    return lead


def consent_request_send(*, request_id: int) -> bool:
    """Send one request's confirmation email if nobody else has it. Must run outside a transaction.

    An address on the suppression list is not sent to: the request is given up (``attempts`` set
    to ``MAX_ATTEMPTS``, ``last_error`` saying why), so neither a retry nor the sweep picks it again.
    """
    now = timezone.now()
    claimed = (
        ConsentRequest.objects.filter(pk=request_id, sent_at__isnull=True, confirmed_at__isnull=True)
        .filter(attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT))
        .update(claimed_at=now)
    )
    if not claimed:
        return False
    request = ConsentRequest.objects.select_related("lead", "form").get(pk=request_id)
    if suppressed_emails([request.lead.email]):
        logger.info("consent request %s not sent: the address is on the suppression list", request_id)
        ConsentRequest.objects.filter(pk=request_id).update(
            claimed_at=None, attempts=MAX_ATTEMPTS, last_error=SUPPRESSED_ERROR
        )
        return False
    try:
        _confirmation_email(request).send()
    except Exception as exc:
        logger.warning("consent request %s not sent: %s", request_id, exc)
        ConsentRequest.objects.filter(pk=request_id).update(
            claimed_at=None, attempts=request.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return False
    ConsentRequest.objects.filter(pk=request_id).update(sent_at=timezone.now(), attempts=request.attempts + 1)
    return True


def consent_requests_unsent_ids(*, limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(
        ConsentRequest.objects.filter(sent_at__isnull=True, confirmed_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def _confirmation_email(request: ConsentRequest) -> EmailMultiAlternatives:
    url = consent_confirm_url(request)
    what = request.form.name if request.form else "our emails"
    days = settings.CONSENT_CONFIRM_MAX_AGE_DAYS
    text = (
        f"Please confirm that you want to hear from us ({what}):\n\n{url}\n\n"
        f"The link works for {days} days. If you did not ask for this, ignore this email: "
        "you will not get anything else from us."
    )
    html = (
        f"<p>Please confirm that you want to hear from us ({escape(what)}).</p>"
        f'<p><a href="{escape(url)}">Confirm my subscription</a></p>'
        f"<p>The link works for {days} days. If you did not ask for this, ignore this email: "
        "you will not get anything else from us.</p>"
    )
    email = EmailMultiAlternatives(
        subject="Please confirm your subscription",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[request.lead.email],
        headers={"X-LeadFunnel-Consent-Request": str(request.pk)},
    )
    email.attach_alternative(html, "text/html")
    return email


__all__ = [
    "ConsentLinkExpired",
    "ConsentLinkInvalid",
    "consent_confirm",
    "consent_confirm_url",
    "consent_request_from_token",
    "consent_request_send",
    "consent_requests_create",
    "consent_requests_unsent_ids",
    "consent_token",
    "leads_consent_withdraw",
]

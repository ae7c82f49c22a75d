"""Delivery channels: email through Django's mail backends, SMS through a pluggable backend.

Provider errors are classified as transient (retry with backoff) or permanent
(give up; a refused recipient is a hard bounce), like healthchecks' transports.
"""

import smtplib
import sys
import threading
from dataclasses import dataclass

from django.core.mail import EmailMultiAlternatives
from django.utils.module_loading import import_string

from .conf import nurture_setting
from .tracking import tracking_url


class ProviderError(Exception):
    def __init__(self, message: str, *, permanent: bool = False, bounce: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent or bounce
        self.bounce = bounce


def provider_error(exc: BaseException) -> ProviderError:
    """Map whatever a backend raised to a ProviderError saying whether to retry."""
    if isinstance(exc, ProviderError):
        return exc
    text = f"{type(exc).__name__}: {exc}"[:1000]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return ProviderError(text, bounce=True)
        return ProviderError(text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return ProviderError(text, permanent=exc.smtp_code >= 500)
    name = type(exc).__name__
    if name == "AnymailRecipientsRefused":
        return ProviderError(text, bounce=True)
    status = getattr(exc, "status_code", None)
    if name.startswith("Anymail") and isinstance(status, int) and 400 <= status < 500 and status != 429:
        return ProviderError(text, permanent=True)
    # Connection problems, timeouts, 5xx from an API and anything unknown: retry, bounded.
    return ProviderError(text)


def provider_message_id(email: EmailMultiAlternatives) -> str | None:
    """The provider's id of a sent email, when it went through an anymail backend."""
    status = getattr(email, "anymail_status", None)
    if status is None:
        return None
    if isinstance(status.message_id, str):
        return status.message_id
    for recipient in (status.recipients or {}).values():
        if isinstance(recipient.message_id, str):
            return recipient.message_id
    return None


def email_build(
    *, message, connection=None, from_email: str | None = None, unsubscribe_url: str | None = None
) -> EmailMultiAlternatives:
    """The email for a stored Message row (``message.token`` gives the unsubscribe URL, unless the
    caller passes the one it signed when rendering the body)."""
    headers = {"X-LeadFunnel-Message": message.token}
    if message.purpose == "nurture":
        headers["List-Unsubscribe"] = f"<{unsubscribe_url or tracking_url(message.token, 'u')}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text_body,
        from_email=from_email or nurture_setting("FROM_EMAIL"),
        to=[message.to],
        connection=connection,
        headers=headers,
    )
    email.attach_alternative(message.body, "text/html")
    return email


@dataclass
class SentSMS:
    to: str
    body: str
    reference: str


class BaseSMSBackend:
    def send(self, *, to: str, body: str, reference: str) -> str:
        """Send one SMS; return the provider's id. Raise ProviderError on failure."""
        raise NotImplementedError


class ConsoleSMSBackend(BaseSMSBackend):
    """Development: print the SMS."""

    def send(self, *, to: str, body: str, reference: str) -> str:
        sys.stdout.write(f"SMS to {to} [{reference}]: {body}\n")
        sys.stdout.flush()
        return reference


class InMemorySMSBackend(BaseSMSBackend):
    """Tests and benchmarks: keep sent SMS in ``InMemorySMSBackend.outbox``."""

    outbox: list[SentSMS] = []
    _lock = threading.Lock()

    def send(self, *, to: str, body: str, reference: str) -> str:
        with self._lock:
            InMemorySMSBackend.outbox.append(SentSMS(to=to, body=body, reference=reference))
        return reference


def sms_backend_get() -> BaseSMSBackend:
    return import_string(nurture_setting("SMS_BACKEND"))()

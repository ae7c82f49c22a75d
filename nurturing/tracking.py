"""Tracking links in messages: open pixel, click redirect, one-click unsubscribe.

A token is ``<message token>.<kind>[.<link index>]`` signed with
``django.core.signing`` under its own salt, so it is scoped to one message and
one purpose. A click redirects only to the URL at that index in the message's
stored links; a tampered or unknown token answers 404 and never redirects.
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.http import Http404
from django.urls import reverse
from django.utils.encoding import force_bytes

SALT = "leadfunnel.nurturing.tracking"
KINDS = {"o": "open", "c": "click", "u": "unsubscribe"}
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class _TrackingSigner(signing.Signer):
    """``django.core.signing.Signer`` with the key derivation done once per key.

    Django derives the HMAC key (a hash of salt + secret) again for every signature; the
    executor signs three or four links per email. Signatures are byte-for-byte Django's,
    and unsigning (with SECRET_KEY_FALLBACKS) goes through the same method.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._macs: dict = {}

    def signature(self, value, key=None) -> str:
        key = key or self.key
        base = self._macs.get(key)
        if base is None:
            hasher = getattr(hashlib, self.algorithm)
            derived = hasher(force_bytes(self.salt + "signer") + force_bytes(key)).digest()
            base = self._macs[key] = hmac.new(derived, digestmod=hasher)
        mac = base.copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


_signer = _TrackingSigner(salt=SALT)


def tracking_token(message_token: str, kind: str, index: int | None = None) -> str:
    value = f"{message_token}.{kind}" if index is None else f"{message_token}.{kind}.{index}"
    return _signer.sign(value)


@lru_cache(maxsize=8)
def _url_template(kind: str, site_url: str) -> str:
    return site_url + reverse(f"tracking-{KINDS[kind]}", kwargs={"token": "TOKEN"}).replace("TOKEN", "{}")


def tracking_url(message_token: str, kind: str, index: int | None = None) -> str:
    return _url_template(kind, settings.SITE_URL).format(tracking_token(message_token, kind, index))


def token_parse(token: str, kind: str) -> tuple[str, int | None]:
    """Return (message token, link index) or raise Http404 for anything not signed by us for ``kind``."""
    try:
        value = _signer.unsign(token)
    except signing.BadSignature:
        raise Http404("Unknown link.") from None
    parts = value.split(".")
    if len(parts) not in (2, 3) or parts[1] != kind:
        raise Http404("Unknown link.")
    index = None
    if len(parts) == 3:
        if not parts[2].isdigit():
            raise Http404("Unknown link.")
        index = int(parts[2])
    return parts[0], index

"""Per-client-IP throttle for the public intake (``INTAKE_RATE_LIMIT``, DRF rate syntax; ``off`` disables)."""

from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_ip(request) -> str:
    """The caller's address. X-Forwarded-For is trusted only behind known proxies
    (REST_FRAMEWORK["NUM_PROXIES"]); otherwise any client could dodge the limit by inventing it."""
    if api_settings.NUM_PROXIES is not None:
        return BaseThrottle().get_ident(request)
    return request.META.get("REMOTE_ADDR", "")


class IntakeRateThrottle(SimpleRateThrottle):
    scope = "intake"

    def get_rate(self) -> str | None:
        # Read per request (not at import) so a changed setting applies at once.
        rate = str(getattr(settings, "INTAKE_RATE_LIMIT", "") or "").strip()
        if not rate or rate.lower() == "off":
            return None
        return rate

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


class TrackRateThrottle(IntakeRateThrottle):
    """Per client IP on ``POST /api/v1/track/`` (``TRACK_RATE_LIMIT``; ``off`` disables)."""

    scope = "track"

    def get_rate(self) -> str | None:
        rate = str(getattr(settings, "TRACK_RATE_LIMIT", "") or "").strip()
        if not rate or rate.lower() == "off":
            return None
        return rate

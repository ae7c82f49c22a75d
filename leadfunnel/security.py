"""Brute-force protection for sign-in and tokens.

Login lockout
    Failed sign-ins are counted in the cache per (username, client IP) and per
    client IP. After ``LOGIN_MAX_FAILURES`` failures for one username from one
    address (or ``LOGIN_MAX_FAILURES_PER_IP`` for any username from one
    address) within ``LOGIN_LOCKOUT_SECONDS``, every further attempt is refused
    — even with the right password — until the window passes.

    Enforcement lives in an authentication backend (``LockoutBackend``, first in
    ``AUTHENTICATION_BACKENDS``) so it covers every way in that calls
    ``authenticate()``: the dashboard login, the admin login and the token
    endpoint. ``LockoutLoginView`` adds the human answer: 429 and a message.
    Each lockout is written to the audit log.

Token endpoint
    ``POST /api/v1/auth/token/`` exchanges a username and password for the
    user's API token (the same one ``manage.py drf_create_token`` makes),
    throttled per IP (``TOKEN_RATE_LIMIT``) and subject to the lockout.
"""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.forms.utils import ErrorDict
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from .api import error_body
from .audit import audit_record

logger = logging.getLogger(__name__)


def _max_failures() -> int:
    return int(getattr(settings, "LOGIN_MAX_FAILURES", 5))


def _max_failures_per_ip() -> int:
    return int(getattr(settings, "LOGIN_MAX_FAILURES_PER_IP", 20))


def _window() -> int:
    return int(getattr(settings, "LOGIN_LOCKOUT_SECONDS", 900))


def request_ip(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    meta = getattr(request, "META", None) or getattr(getattr(request, "_request", None), "META", {})
    return meta.get("REMOTE_ADDR", "") or ""


def _keys(username: str, ip: str) -> tuple[str, str]:
    # Hashed: any text may be typed as a username, and cache keys must stay short and plain.
    name = hashlib.sha256((username or "").strip().lower()[:150].encode("utf-8", "replace")).hexdigest()[:32]
    address = hashlib.sha256(ip.encode()).hexdigest()[:32]
    return f"lockout:user:{name}:{address}", f"lockout:ip:{address}"


def login_is_locked(*, username: str, ip: str) -> bool:
    user_key, ip_key = _keys(username, ip)
    counts = cache.get_many([user_key, ip_key])
    return counts.get(user_key, 0) >= _max_failures() or counts.get(ip_key, 0) >= _max_failures_per_ip()


def _bump(key: str) -> int:
    if cache.add(key, 1, timeout=_window()):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=_window())
        return 1


def login_failure_record(*, username: str, ip: str) -> None:
    user_key, ip_key = _keys(username, ip)
    count = _bump(user_key)
    _bump(ip_key)
    if count == _max_failures():
        user = get_user_model().objects.filter(username__iexact=username).first() if username else None
        logger.warning("login locked for %r from %s after %d failures", username, ip, count)
        audit_record(
            actor=None,
            action="user.login_locked",
            object_type="auth.user",
            object_id=str(user.pk) if user else "",
            changes={"username": username[:150], "ip": ip, "failures": count},
        )


def login_failures_clear(*, username: str, ip: str) -> None:
    cache.delete(_keys(username, ip)[0])


class LockoutBackend:
    """Refuses to authenticate a locked-out (username, IP); otherwise defers to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is not None and login_is_locked(username=str(username), ip=request_ip(request)):
            raise PermissionDenied("Too many failed sign-ins.")
        return None

    def get_user(self, user_id):
        # Sessions created by force_login() without a backend name this (first) backend;
        # loading the user is the model backend's job either way.
        return ModelBackend().get_user(user_id)


@receiver(user_login_failed, dispatch_uid="leadfunnel.security.count_failure")
def _count_failure(sender, credentials: dict, request=None, **kwargs) -> None:
    username = str(credentials.get("username") or "")
    ip = request_ip(request)
    if not login_is_locked(username=username, ip=ip):
        login_failure_record(username=username, ip=ip)


@receiver(user_logged_in, dispatch_uid="leadfunnel.security.clear_failures")
def _clear_failures(sender, request, user, **kwargs) -> None:
    login_failures_clear(username=user.get_username(), ip=request_ip(request))


LOCKED_MESSAGE = "Too many failed sign-ins. Try again in {minutes} minutes."


def _locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=max(1, _window() // 60))


class LockoutLoginView(auth_views.LoginView):
    """The dashboard login: a locked-out attempt gets 429 and says so."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        if login_is_locked(username=username, ip=request_ip(request)):
            form = self.get_form()
            form.cleaned_data = {}
            form._errors = ErrorDict()
            form.add_error(None, _locked_message())
            response = self.render_to_response(self.get_context_data(form=form, locked_message=_locked_message()))
            response.status_code = 429
            response["Retry-After"] = str(_window())
            return response
        return super().post(request, *args, **kwargs)


# --- token endpoint -----------------------------------------------------------


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self) -> str | None:
        rate = str(getattr(settings, "TOKEN_RATE_LIMIT", "") or "").strip()
        if not rate or rate.lower() == "off":
            return None
        return rate

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request_ip(request)}


class TokenObtainView(ObtainAuthToken):
    """Exchange a username and password for the API token (throttled, locked out like the login)."""

    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        operation_id="auth_token_obtain",
        auth=[],
        request=inline_serializer(
            "TokenObtainInput",
            {"username": serializers.CharField(max_length=150), "password": serializers.CharField(max_length=128)},
        ),
        responses={
            200: inline_serializer("TokenObtainOutput", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="Wrong username or password (JSON error body)."),
            429: OpenApiResponse(description="Too many attempts (see Retry-After)."),
        },
    )
    def post(self, request, *args, **kwargs):
        username = request.data.get("username", "") if hasattr(request.data, "get") else ""
        if isinstance(username, str) and login_is_locked(username=username, ip=request_ip(request)):
            response = Response(error_body(429, "locked_out", _locked_message()), status=429)
            response["Retry-After"] = str(_window())
            return response
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        login_failures_clear(username=user.get_username(), ip=request_ip(request))
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key}, status=status.HTTP_200_OK)

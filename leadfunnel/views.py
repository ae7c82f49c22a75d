"""Health checks and JSON error pages for API paths."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from .api import json_error_response
from .celery import app

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive. No I/O."""
    return JsonResponse({"status": "ok"})


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def check_broker() -> str | None:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachable; 503 naming what failed otherwise."""
    checks = {"database": check_database(), "broker": check_broker()}
    failed = {name: error for name, error in checks.items() if error}
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": {name: ("ok" if not error else "failed") for name, error in checks.items()},
    }
    if failed:
        body["message"] = "Not ready: " + ", ".join(f"{name} unreachable ({err[:200]})" for name, err in failed.items())
        response = JsonResponse(body, status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse(body)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None):
    if _is_api(request):
        return json_error_response(404, "not_found", "Not found.")
    return render(request, "errors/404.html", status=404)


def permission_denied(request: HttpRequest, exception: Exception | None = None):
    if _is_api(request):
        return json_error_response(403, "permission_denied", "You do not have permission to do this.")
    return render(request, "errors/403.html", {"message": str(exception or "")}, status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None):
    if _is_api(request):
        return json_error_response(400, "bad_request", "Bad request.")
    return render(request, "errors/400.html", status=400)


def server_error(request: HttpRequest):
    if _is_api(request):
        return json_error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return render(request, "errors/500.html", status=500)


def csrf_failure(request: HttpRequest, reason: str = ""):
    if _is_api(request):
        return json_error_response(403, "csrf_failed", f"CSRF check failed: {reason}")
    return render(
        request,
        "errors/403.html",
        {"message": "Your form expired or came from elsewhere. Reload the page and try again."},
        status=403,
    )


__all__ = ["healthz", "readyz", "settings"]

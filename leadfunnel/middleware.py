"""Cross-cutting request guards: the database being down, and oversized bodies.

``DatabaseUnavailableMiddleware``
    A view (DRF or plain Django) that hits ``OperationalError``/``InterfaceError``
    — PostgreSQL refusing connections, a restart, a dropped socket — answers
    503 with ``Retry-After`` instead of a 500: JSON in the common error shape on
    API paths, a short page elsewhere. DRF views get the same answer from
    ``leadfunnel.api.exception_handler``; this catches everything else.

``RequestSizeLimitMiddleware``
    Refuses an API request whose declared ``Content-Length`` exceeds
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413 before any parser reads it. Django
    only enforces that limit when ``request.body``/``request.POST`` is read, and
    DRF's JSON parser streams from the socket, so without this a big JSON body
    would be parsed whole.

``NulCharacterMiddleware``
    A NUL character in the query string is a 400 naming the parameter.
"""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from .api import error_body, json_error_response
from .validation import InvalidInput, refuse_nul

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        response = json_error_response(
            503, "database_unavailable", "The database is unavailable; please retry shortly."
        )
    else:
        response = HttpResponse(
            "<!doctype html><title>Unavailable</title><h1>LeadFunnel is briefly unavailable</h1>"
            "<p>The database cannot be reached. Please try again in a few seconds.</p>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except (OperationalError, InterfaceError) as exc:  # raised past the inner middleware
            logger.warning("database unavailable on %s: %s", request.path, exc)
            return database_unavailable_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable on %s: %s", request.path, exception)
            return database_unavailable_response(request)
        return None


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return json_error_response(400, "bad_request", "Content-Length must be a number.")
            if length > limit:
                return json_error_response(413, "too_large", f"The request body is too large (at most {limit} bytes).")
        return self.get_response(request)


class NulCharacterMiddleware:
    """A NUL character in the query string (``?search=%00``) is a 400 naming the parameter, on
    every page and endpoint: PostgreSQL refuses it in any text comparison. Bodies are checked
    by the API's parsers and the public intake (:func:`leadfunnel.validation.refuse_nul`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            try:
                refuse_nul({key: request.GET.getlist(key) for key in request.GET})
            except InvalidInput as exc:
                if _is_api(request):
                    body = error_body(400, "invalid", exc.message, exc.fields)
                    return JsonResponse(body, status=400)
                return HttpResponseBadRequest(exc.message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

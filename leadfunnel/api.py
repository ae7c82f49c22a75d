"""Cross-cutting API pieces: the one error shape and its handler, and the schema of a list page.

Every error answer is JSON::

    {"status": 409, "code": "illegal_transition", "message": "…", "errors": {...}}

``message`` is always a sentence a person can read; ``errors`` carries
per-field messages for validation failures.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DomainError

logger = logging.getLogger(__name__)


def page_schema(name: str, serializer_class) -> serializers.Serializer:
    """The OpenAPI schema of a DRF page-number page of ``serializer_class`` rows."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


def _first_message(detail: object) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            if key in ("non_field_errors", "detail"):
                return inner
            return f"{key}: {inner}"
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def error_body(status_code: int, code: str, message: str, errors: dict | None = None) -> dict:
    body = {"status": status_code, "code": code, "message": message}
    if errors:
        body["errors"] = errors
    return body


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.status, exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        exc = exceptions.ParseError("The request body is too large.")
        exc.status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc)
        response = Response(
            error_body(503, "database_unavailable", "The database is unavailable; please retry shortly."),
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    if isinstance(exc, DatabaseError):
        return None

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        errors = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = error_body(response.status_code, "invalid", _first_message(detail), errors)
        return response
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    message = _first_message(getattr(exc, "detail", str(exc)))
    response.data = error_body(response.status_code, code, message)
    return response


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status_code, code, message), status=status_code)


# --- OpenAPI: the error answers every operation can give --------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of the API.",
    "properties": {
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
    "required": ["status", "code", "message"],
}
COMMON_ERRORS = {
    "400": "Invalid input: a sentence in `message`, per-field messages in `errors`.",
    "401": "Not authenticated.",
    "403": "Not allowed for this role or object.",
    "404": "Not found (or a page past the end).",
    "429": "Too many requests; see Retry-After.",
    "503": "The database is unavailable; retry after Retry-After seconds.",
}
BODY_ERRORS = {"413": "The request body is too large.", "415": "Unsupported content type."}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: document the JSON error answers on every operation.

    The exception handler and the middleware can give these on any endpoint; without them
    clients (and schema-driven tests) see undocumented status codes.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON_ERRORS)
            if method in ("post", "put", "patch"):
                extra.update(BODY_ERRORS)
            for code, description in extra.items():
                if code not in responses:
                    responses[code] = {"description": description, "content": content}
    return result

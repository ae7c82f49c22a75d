"""Website tracking API: the public page-view endpoint the script posts to, and the tracked sites
marketers manage.

``POST /api/v1/track/`` has no token. What it refuses, and how:

- ``DNT: 1`` / ``Sec-GPC: 1``, or a bot's user agent → ``204``, nothing read or stored;
- a body that is not a JSON object, a bad field → ``400`` naming the field; over 8 KB → ``413``;
- an unknown or inactive site key → ``404``; an ``Origin`` that is not one of the site's → ``403``
  (without CORS headers, so the browser does not hand the answer to the page);
- over ``TRACK_RATE_LIMIT`` per client IP → ``429`` (DRF's throttle).

A stored view answers ``204``. Only the site's allowed origins get ``Access-Control-Allow-Origin``.
"""

import json

from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from leadfunnel.audit import audit_record
from leadfunnel.roles import IsMarketer
from leadfunnel.validation import refuse_nul

from . import services, tracking
from .api import ERRORS, BodyLimitedAPIView, LeadPagination
from .models import TrackedSite
from .serializers import SiteSerializer, TrackInputSerializer, save_audited
from .throttles import TrackRateThrottle


def _do_not_track(request) -> bool:
    return request.headers.get("DNT", "").strip() == "1" or request.headers.get("Sec-GPC", "").strip() == "1"


class _TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The body is larger than {tracking.MAX_BODY_BYTES} bytes."
    default_code = "too_large"


def _read_json(request) -> dict:
    raw = request._request.body
    if len(raw) > tracking.MAX_BODY_BYTES:
        raise _TooLarge()
    try:
        data = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise exceptions.ParseError("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise exceptions.ParseError("The body must be a JSON object.")
    refuse_nul(data)
    return data


class TrackView(APIView):
    """Public page views from ``static/js/lf-track.js``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TrackRateThrottle]
    parser_classes: list = []  # read as JSON whatever the content type (text/plain avoids a preflight)
    allowed_origins: frozenset[str] = frozenset()

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = tracking.normalise_origin(request.headers.get("Origin", ""))
        if origin and origin in self.allowed_origins:
            response["Access-Control-Allow-Origin"] = request.headers["Origin"]
            if request.method == "OPTIONS":
                response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
                response["Access-Control-Allow-Headers"] = "Content-Type"
                response["Access-Control-Max-Age"] = "3600"
        patch_vary_headers(response, ("Origin",))
        return response

    @extend_schema(exclude=True)
    def options(self, request):
        """CORS preflight (a ``Content-Type: application/json`` post): the key is in the body, not
        known yet, so the origins of every active site get the allow headers."""
        origins: set[str] = set()
        for allowed in TrackedSite.objects.filter(active=True).values_list("allowed_origins", flat=True):
            origins.update(o for o in allowed or [] if isinstance(o, str))
        self.allowed_origins = frozenset(origins)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="track_page_view",
        auth=[],
        request={"application/json": TrackInputSerializer, "text/plain": TrackInputSerializer},
        responses={
            204: OpenApiResponse(description="Stored, or dropped on purpose (Do-Not-Track, a bot)."),
            400: ERRORS[400],
            403: OpenApiResponse(description="The Origin is not one of the site's allowed origins."),
            404: OpenApiResponse(description="Unknown or inactive site key."),
            413: OpenApiResponse(description="Body too large."),
            429: OpenApiResponse(description="Too many page views from this address (see Retry-After)."),
        },
    )
    def post(self, request):
        if _do_not_track(request) or tracking.is_bot(request.headers.get("User-Agent", "")):
            return Response(status=status.HTTP_204_NO_CONTENT)
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > tracking.MAX_BODY_BYTES:
            raise _TooLarge()
        data = _read_json(request)
        site = services.site_get_active(key=tracking.site_key_clean(data))
        self.allowed_origins = frozenset(site.allowed_origins or [])
        origin = tracking.normalise_origin(request.headers.get("Origin", ""))
        if origin not in self.allowed_origins:
            self.allowed_origins = frozenset()
            raise exceptions.PermissionDenied(
                "The request's Origin is not one of this site's allowed origins."
                if origin
                else "An Origin header is required (the script runs in a browser)."
            )
        view = tracking.pageview_clean(data, site_key=site.public_key, allowed_origins=list(self.allowed_origins))
        services.pageview_track(site=site, view=view)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tracked sites (marketers) ----------------------------------------------------------------


class SiteListCreateView(BodyLimitedAPIView):
    permission_classes = [IsMarketer]
    pagination_class = LeadPagination

    @extend_schema(operation_id="sites_list", responses={200: SiteSerializer(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(TrackedSite.objects.order_by("name", "pk"), request, view=self)
        return paginator.get_paginated_response(SiteSerializer(page, many=True).data)

    @extend_schema(operation_id="sites_create", request=SiteSerializer, responses={201: SiteSerializer, **ERRORS})
    def post(self, request):
        serializer = SiteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _site, data = save_audited(serializer, actor=request.user, entity="site", created_by=request.user)
        return Response(data, status=status.HTTP_201_CREATED)


class SiteDetailView(BodyLimitedAPIView):
    permission_classes = [IsMarketer]

    def _get(self, site_id: int) -> TrackedSite:
        site = TrackedSite.objects.filter(pk=site_id).first()
        if site is None:
            raise exceptions.NotFound(f"No tracked site with id {site_id}.")
        return site

    @extend_schema(operation_id="sites_retrieve", responses={200: SiteSerializer, **ERRORS})
    def get(self, request, site_id: int):
        return Response(SiteSerializer(self._get(site_id)).data)

    @extend_schema(
        operation_id="sites_partial_update", request=SiteSerializer, responses={200: SiteSerializer, **ERRORS}
    )
    def patch(self, request, site_id: int):
        serializer = SiteSerializer(self._get(site_id), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        _site, data = save_audited(serializer, actor=request.user, entity="site")
        return Response(data)

    @extend_schema(operation_id="sites_destroy", responses={204: None, **ERRORS})
    def delete(self, request, site_id: int):
        site = self._get(site_id)
        audit_record(actor=request.user, action="site.deleted", obj=site, changes={"name": site.name})
        site.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

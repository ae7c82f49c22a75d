"""Website tracking: page views from the first-party script, kept per anonymous visitor until the
visitor is identified (a form submitted with its id, a tracked email link followed), then turned
into the lead's ``page_view`` interactions through the one interaction intake
(:func:`interactions_record_bulk`), which stores and scores them like any other event.

The anonymous path is the hot one and takes three statements: the site, one upsert of the
visitor, one insert of the view. Nothing is scored for an anonymous view.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from leadfunnel.errors import NotFound

from .. import sql, tracking
from ..models import AnonymousPageView, Lead, TrackedSite, Visitor
from .interactions import MAX_BULK_EVENTS, interactions_record_bulk

logger = logging.getLogger(__name__)

# The source of the interactions made from page views; with "pv:<anonymous view id>" as their
# external id it makes a second identification of the same views a duplicate, never a second count.
TRACKING_SOURCE = "website"


@dataclass
class TrackResult:
    visitor_id: int
    lead_id: int | None = None
    identified: bool = False
    converted: int = 0


def site_get_active(*, key: str) -> TrackedSite:
    site = TrackedSite.objects.filter(public_key=key, active=True).first()
    if site is None:
        raise NotFound("key: Unknown or inactive site key.", fields={"key": ["Unknown or inactive site key."]})
    return site


def _event(view: tracking.PageView, *, lead_id: int, occurred_at: datetime, external_id: str | None) -> dict:
    return {
        "lead": lead_id,
        "type": "page_view",
        "occurred_at": occurred_at.isoformat(),
        "properties": view.properties(),
        "source": TRACKING_SOURCE,
        "external_id": external_id,
    }


def pageview_track(*, site: TrackedSite, view: tracking.PageView, now: datetime | None = None) -> TrackResult:
    """Record one page view of ``site``: an anonymous visitor's is kept for later; an identified
    visitor's goes straight to its lead as a ``page_view`` interaction (scored). A valid
    ``view.identify`` token (from a tracked email link) identifies the visitor first."""
    now = now or timezone.now()
    visitor_id, lead_id = sql.visitor_upsert(site_id=site.pk, key=view.visitor, now=now)
    result = TrackResult(visitor_id=visitor_id, lead_id=lead_id)
    if view.identify:
        token_lead = tracking.identify_token_parse(view.identify)
        # An erased lead's old email link identifies nobody: its person's browsing stays unlinked.
        live = Lead.objects.filter(pk=token_lead, erased_at__isnull=True)
        if token_lead is not None and token_lead != lead_id and live.exists():
            result.converted = visitors_identify(visitor_ids=[visitor_id], lead_id=token_lead, now=now)
            result.lead_id, result.identified = token_lead, True
    if result.lead_id is None:
        AnonymousPageView.objects.create(
            visitor_id=visitor_id, occurred_at=now, url=view.url, title=view.title, referrer=view.referrer, utm=view.utm
        )
        return result
    interactions_record_bulk(
        events=[_event(view, lead_id=result.lead_id, occurred_at=now, external_id=None)], source=TRACKING_SOURCE
    )
    return result


@transaction.atomic
def visitors_identify(*, visitor_ids: list[int], lead_id: int, now: datetime | None = None) -> int:
    """The visitors are this lead: link them, and turn their anonymous page views into the lead's
    ``page_view`` interactions (stored and scored by :func:`interactions_record_bulk`, in batches of
    its maximum size), then delete the anonymous copies. Set-based; safe to call twice or
    concurrently: the visitor rows are locked, and each view's external id (``pv:<id>``) is
    recorded once. Answers how many views became interactions."""
    if not visitor_ids:
        return 0
    now = now or timezone.now()
    ids = list(
        Visitor.objects.select_for_update().filter(pk__in=visitor_ids).order_by("pk").values_list("pk", flat=True)
    )
    if not ids:
        return 0
    Visitor.objects.filter(pk__in=ids).update(lead_id=lead_id, identified_at=now)
    views = list(
        AnonymousPageView.objects.filter(visitor_id__in=ids)
        .select_related("visitor__site")
        .order_by("occurred_at", "pk")
    )
    accepted = 0
    for start in range(0, len(views), MAX_BULK_EVENTS):
        chunk = views[start : start + MAX_BULK_EVENTS]
        events = [
            _event(
                tracking.PageView(
                    site_key=row.visitor.site.public_key,
                    visitor=row.visitor.key,
                    url=row.url,
                    title=row.title,
                    referrer=row.referrer,
                    utm=row.utm or {},
                ),
                lead_id=lead_id,
                occurred_at=row.occurred_at,
                external_id=f"pv:{row.pk}",
            )
            for row in chunk
        ]
        result = interactions_record_bulk(events=events, source=TRACKING_SOURCE)
        if result.errors:
            logger.warning(
                "identify lead %s: %s page views refused: %s", lead_id, len(result.errors), result.errors[:3]
            )
        accepted += result.accepted
    if views:
        AnonymousPageView.objects.filter(pk__in=[row.pk for row in views]).delete()
    return accepted


def visitor_identify_by_key(*, visitor_key: str, lead_id: int, site_key: str = "") -> int:
    """A form was submitted with the script's visitor id (``lf_visitor``, and ``lf_site`` when the
    snippet knows it): that visitor, on that site or on any of ours, is the lead. Answers how many
    earlier page views became the lead's interactions; an unknown or malformed id changes nothing."""
    if not visitor_key or not tracking.VISITOR_ID.match(visitor_key):
        return 0
    visitors = Visitor.objects.filter(key=visitor_key)
    if site_key:
        visitors = visitors.filter(site__public_key=site_key)
    ids = list(visitors.values_list("pk", flat=True))
    if ids:
        return visitors_identify(visitor_ids=ids, lead_id=lead_id)
    site = TrackedSite.objects.filter(public_key=site_key, active=True).first() if site_key else None
    if site is not None:
        # The form came before the script's first page view: its later views are the lead's.
        now = timezone.now()
        Visitor.objects.bulk_create(
            [Visitor(site=site, key=visitor_key, lead_id=lead_id, created_at=now, last_seen_at=now, identified_at=now)],
            ignore_conflicts=True,
        )
    return 0


def tracking_link_identify(*, url: str, lead_id: int) -> str:
    """The URL a tracked email link redirects to: with the lead's identify token when it points at
    one of our active sites (whose script identifies the visitor with it), unchanged otherwise."""
    origin = tracking.origin_of(url)
    if not origin:
        return url
    origins: set[str] = set()
    for allowed in TrackedSite.objects.filter(active=True).values_list("allowed_origins", flat=True):
        origins.update(o for o in allowed or [] if isinstance(o, str))
    return tracking.identify_link(url, lead_id=lead_id, origins=origins)


def anonymous_activity_purge(*, now: datetime | None = None, days: int | None = None) -> dict[str, int]:
    """Delete anonymous page views older than ``RETENTION_ANONYMOUS_DAYS`` and the anonymous
    visitors left without a view and not seen since. Identified visitors (lead links) stay."""
    now = now or timezone.now()
    days = settings.RETENTION_ANONYMOUS_DAYS if days is None else days
    cutoff = now - timedelta(days=days)
    views, _ = AnonymousPageView.objects.filter(occurred_at__lt=cutoff).delete()
    visitors, _ = (
        Visitor.objects.filter(lead__isnull=True, last_seen_at__lt=cutoff).exclude(page_views__isnull=False).delete()
    )
    return {"page_views": views, "visitors": visitors}

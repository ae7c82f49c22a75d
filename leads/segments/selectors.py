"""Reads on segments. A segment's members are one query (:func:`segment_leads`); the counts of
many segments one cheap count each (:func:`segment_counts`)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from leadfunnel.errors import NotFound, ValidationFailed

from ..models import Lead, Segment, SegmentMember
from .compiler import definition_q


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.select_related("created_by").order_by("name", "id")


def segment_get(*, segment_id) -> Segment:
    try:
        segment_id = int(segment_id)
    except (TypeError, ValueError):
        raise ValidationFailed(
            "segment must be a segment id (a whole number).", fields={"segment": ["Not an id."]}
        ) from None
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(f"No segment with id {segment_id}.")
    return segment


def segment_q(segment: Segment) -> Q:
    """The condition on ``Lead`` rows that makes them members of ``segment``."""
    if segment.kind == Segment.Kind.STATIC:
        return Q(Exists(SegmentMember.objects.filter(segment_id=segment.pk, lead_id=OuterRef("pk"))))
    return definition_q(segment.definition or {})


def segment_leads(*, segment: Segment, leads: QuerySet[Lead] | None = None) -> QuerySet[Lead]:
    """The members of ``segment`` (among ``leads``, default every lead): one query when evaluated."""
    base = Lead.objects.all() if leads is None else leads
    return base.filter(segment_q(segment))


def segment_lead_ids(*, segment_id) -> QuerySet:
    """The ids of a segment's members, as a subquery other apps filter by (``lead_id__in=…``)."""
    return segment_leads(segment=segment_get(segment_id=segment_id)).values("pk")


def segment_counts(segments: list[Segment]) -> dict[int, int]:
    """Live member counts of ``segments``: one count query per segment, each planned on its own (a
    behaviour as a semi-join or anti-join, a static list from its member rows, parallel workers
    where they pay). At 100k leads this measured faster than one statement for all of them, both
    the shared pass with ``COUNT(*) FILTER (WHERE …)`` per segment (every condition evaluated on
    every lead) and a ``UNION ALL`` of the counts (no parallel plans inside it)."""
    return {s.pk: segment_count(s) for s in segments}


def segment_count(segment: Segment) -> int:
    return segment_leads(segment=segment).count()


def static_lists() -> QuerySet[Segment]:
    return Segment.objects.filter(kind=Segment.Kind.STATIC).order_by("name", "id")


def lead_static_lists(*, lead_id: int) -> list[Segment]:
    """Every static list, each with ``has_lead`` (the lead is on it): the lead page's panel, one query."""
    on_it = SegmentMember.objects.filter(segment_id=OuterRef("pk"), lead_id=lead_id)
    return list(static_lists().annotate(has_lead=Exists(on_it)))

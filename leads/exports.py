"""CSV export of a filtered lead list, streamed row by row (constant memory).

Filters are those of the leads list (``email``, ``stage``, ``owner``, ``min_score``,
``source``, ``search``), applied by :func:`leads_export_queryset`; the rows come from a
server-side cursor (``iterator(chunk_size=…)``) through a ``csv.writer`` into a
``StreamingHttpResponse``, so no whole file is ever held in memory.
"""

import csv
from collections.abc import Iterator

from django.db.models import Q, QuerySet

from leadfunnel.errors import ValidationFailed

from .models import Lead, Stage

EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("email", "email"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("title", "title"),
    ("company", "company_name"),
    ("phone", "phone"),
    ("company_size", "company_size"),
    ("industry", "industry"),
    ("country", "country"),
    ("city", "city"),
    ("stage", "stage"),
    ("cycle", "cycle"),
    ("score", "score"),
    ("fit_score", "fit_score"),
    ("engagement_score", "engagement_score"),
    ("owner", "owner__username"),
    ("source", "source"),
    ("channel", "channel"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("created_at", "created_at"),
    ("stage_changed_at", "stage_changed_at"),
    ("sla_due_at", "sla_due_at"),
)
CHUNK = 2000
# Spreadsheet apps run cells starting with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def leads_export_queryset(params) -> QuerySet:
    """The leads list's filters on a QueryDict/dict. 400 on malformed values."""
    qs = Lead.objects.all()
    email = (params.get("email") or "").strip().lower()
    if email:
        qs = qs.filter(email=email)
    stage = params.get("stage") or ""
    if stage:
        stages = [s.strip() for s in stage.split(",") if s.strip()]
        bad = [s for s in stages if s not in Stage.values]
        if bad:
            raise ValidationFailed(f"Unknown stage {bad[0]!r}; use one of {', '.join(Stage.values)}.")
        qs = qs.filter(stage__in=stages)
    owner = params.get("owner") or ""
    if owner:
        if owner == "none":
            qs = qs.filter(owner__isnull=True)
        elif owner.isdigit():
            qs = qs.filter(owner_id=int(owner))
        else:
            qs = qs.filter(owner__username=owner)
    min_score = params.get("min_score") or ""
    if min_score:
        try:
            qs = qs.filter(score__gte=int(min_score))
        except ValueError:
            raise ValidationFailed(f"min_score must be a whole number, got {min_score!r}.") from None
    source = params.get("source") or ""
    if source:
        qs = qs.filter(source=source)
    search = (params.get("search") or "").strip()
    if search:
        qs = qs.filter(
            Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(company_name__icontains=search)
        )
    return qs.order_by("-created_at", "-id")


def _safe(value) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def leads_export_rows(qs: QuerySet) -> Iterator[str]:
    """CSV lines (header first) for the queryset, fetched ``CHUNK`` rows at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in EXPORT_COLUMNS])
    for row in qs.values_list(*[path for _, path in EXPORT_COLUMNS]).iterator(chunk_size=CHUNK):
        yield writer.writerow([_safe(v) for v in row])

"""CSV export of a filtered lead list, streamed row by row (constant memory).

Filters are those of the leads list (``leads.selectors.LeadFilter``), applied by
:func:`leads_export_queryset`; the rows come from a
server-side cursor (``iterator(chunk_size=…)``) through a ``csv.writer`` into a
``StreamingHttpResponse``, so no whole file is ever held in memory.
"""

import csv
from collections.abc import Iterator

from django.db.models import QuerySet

from leadfunnel.errors import ValidationFailed

from .models import Lead
from .selectors import LeadFilter

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


def leads_export_queryset(params, *, request=None) -> QuerySet:
    """The leads list's own filters (``leads.selectors.LeadFilter``: email, stage, owner,
    min_score, max_score, source, channel, company, form, search, created_after/before,
    ordering) on a QueryDict/dict. 400 on malformed values."""
    filterset = LeadFilter(data=params, queryset=Lead.objects.all(), request=request)
    if not filterset.is_valid():
        errors = {name: [str(e) for e in messages] for name, messages in filterset.errors.items()}
        name, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{name}: {messages[0]}", fields=errors)
    return filterset.qs


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

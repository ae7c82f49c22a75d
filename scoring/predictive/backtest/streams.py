"""The recorded history as the replay reads it: leads by id, and their interactions by lead and time.

One pass over each, in the same order, so the replay merges them holding one lead at a time.
On PostgreSQL the interactions come from a server-side cursor as plain rows (the back-test's
one raw SQL statement); elsewhere from the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection

from leads.models import Interaction, Lead

from ...rules import PROFILE_COLUMNS

CHUNK = 5000


def lead_stream(lead_ids: list[int] | None) -> Iterator[tuple[int, datetime, dict]]:
    qs = Lead.objects.order_by("pk")
    if lead_ids is not None:
        qs = qs.filter(pk__in=lead_ids)
    for row in qs.values("pk", "created_at", *PROFILE_COLUMNS).iterator(chunk_size=CHUNK):
        yield row["pk"], row["created_at"], row


def interaction_stream(
    until: datetime, lead_ids: list[int] | None, types: set[str], property_types: set[str]
) -> Iterator[tuple]:
    """(lead_id, id, type, properties, occurred_at, received_at), ordered by lead and time.

    Only types some rule looks at (the others cannot change a score); properties are
    decoded only for types whose rules test a property.
    """
    if connection.vendor == "postgresql":
        yield from _interaction_stream_pg(until, lead_ids, types, property_types)
        return
    qs = Interaction.objects.filter(occurred_at__lt=until, type__in=sorted(types))
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    yield from (
        qs.order_by("lead_id", "occurred_at", "id")
        .values_list("lead_id", "id", "type", "properties", "occurred_at", "received_at")
        .iterator(chunk_size=CHUNK)
    )


def _interaction_stream_pg(
    until: datetime, lead_ids: list[int] | None, types: set[str], property_types: set[str]
) -> Iterator[tuple]:
    # A server-side cursor and plain rows: at a million interactions the ORM's per-row
    # converters and decoding JSON nobody reads cost more than the replay itself.
    table = Interaction._meta.db_table
    where = ["occurred_at < %s", "type = ANY(%s)"]
    params: list[Any] = [until, sorted(types)]
    if lead_ids is not None:
        where.append("lead_id = ANY(%s)")
        params.append(list(lead_ids))
    sql = (
        f"SELECT lead_id, id, type, CASE WHEN type = ANY(%s) THEN properties::text END, occurred_at, received_at "  # noqa: S608 - fixed SQL, values as parameters
        f"FROM {table} WHERE {' AND '.join(where)} ORDER BY lead_id, occurred_at, id"
    )
    # Outside a transaction Django makes it a WITH HOLD cursor, so progress updates commit meanwhile.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [sorted(property_types), *params])
        while True:
            rows = cursor.fetchmany(CHUNK)
            if not rows:
                return
            for lead_id, pk, itype, raw, occurred_at, received_at in rows:
                yield lead_id, pk, itype, json.loads(raw) if raw else {}, occurred_at, received_at


def by_lead(stream: Iterator[tuple]) -> Iterator[tuple[int, list[tuple]]]:
    current, events = None, []
    for lead_id, *event in stream:
        if lead_id != current:
            if current is not None:
                yield current, events
            current, events = lead_id, []
        events.append(tuple(event))
    if current is not None:
        yield current, events

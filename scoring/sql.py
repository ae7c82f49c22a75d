"""The scoring app's PostgreSQL statements, by name, with the SQLite (embedded default) equivalent.

Reading leads locked (raw rows, without the ORM's per-row work), streaming a batch's interactions
through a server-side cursor, and writing a recompute batch with COPY. Multi-row inserts,
upserts and updates are :mod:`leadfunnel.sql`'s. Services call these as steps.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from django.db import connection
from django.db.models import JSONField

from leadfunnel.sql import is_postgres
from leads.models import Interaction, Lead

from .models import LeadRuleTotal, PendingScore, ScoreContribution
from .rules import PROFILE_COLUMNS

SCORE_COLUMNS = (
    "score",
    "fit_score",
    "engagement_score",
    "fit_points",
    "engagement_points",
    "engagement_points_at",
    "mql_blocked",
    "score_updated_at",
)
LEAD_COLUMNS = ("id", "stage", "owner_id", *PROFILE_COLUMNS, *SCORE_COLUMNS)
CONTRIBUTION_COLUMNS = (
    "lead_id",
    "rule_id",
    "dimension",
    "source",
    "points",
    "reason",
    "at",
    "interaction_id",
    "field",
)
TOTAL_COLUMNS = ("lead_id", "rule_id", "dimension", "matches", "raw_points", "points", "value", "value_at", "last_at")


def locked_lead_rows(*, after: int, until: int | None, limit: int) -> list[dict]:
    """The next ``limit`` leads with ``after < id <= until``, locked, as dicts of ``LEAD_COLUMNS``."""
    if not is_postgres():
        leads = Lead.objects.select_for_update().filter(pk__gt=after)
        if until is not None:
            leads = leads.filter(pk__lte=until)
        return list(leads.order_by("pk").values(*LEAD_COLUMNS)[:limit])
    where = "id > %s" + (" AND id <= %s" if until is not None else "")
    params = [after, until] if until is not None else [after]
    return _raw_locked_lead_rows(where + " ORDER BY id LIMIT %s", [*params, limit])


def locked_leads_by_id(lead_ids: list[int]) -> list[dict]:
    """These leads, locked in id order (concurrent batches cannot deadlock), as dicts of ``LEAD_COLUMNS``."""
    if not is_postgres():
        return list(Lead.objects.select_for_update().filter(pk__in=lead_ids).order_by("pk").values(*LEAD_COLUMNS))
    return _raw_locked_lead_rows("id = ANY(%s) ORDER BY id", [list(lead_ids)])


def _raw_locked_lead_rows(condition: str, params: list) -> list[dict]:
    """PostgreSQL: one raw ``SELECT … WHERE <condition> FOR UPDATE`` giving the same values as
    ``.values(*LEAD_COLUMNS)`` without the ORM's per-row work (only JSON columns need decoding)."""
    fields = [Lead._meta.get_field(name) for name in LEAD_COLUMNS]
    json_columns = [n for n, f in enumerate(fields) if isinstance(f, JSONField)]
    sql = f"SELECT {', '.join(f.column for f in fields)} FROM {Lead._meta.db_table} WHERE {condition} FOR UPDATE"  # noqa: S608 - model names, our conditions
    loads = json.loads
    rows = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for values in cursor.fetchall():
            if json_columns:
                values = list(values)
                for n in json_columns:
                    if isinstance(values[n], str):
                        values[n] = loads(values[n])
            rows.append(dict(zip(LEAD_COLUMNS, values, strict=True)))
    return rows


def relax_commit() -> None:
    """A batch's commit need not wait for the WAL flush (PostgreSQL): after a crash at most the
    last batches are lost, together with the job's progress written in the same transaction,
    so the resumed job redoes exactly those."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def stream_interactions(ruleset, low: int, high: int, types: set[str]):
    """A batch's interactions in (lead, id) order, streamed through a server-side cursor.

    On PostgreSQL the rows are read raw (no ORM converters), the properties JSON is only
    fetched for the types whose rules look at properties, and the interaction's effective
    time comes as ``occurred_at`` (``received_at`` None).
    """
    if not types:
        return
    if not is_postgres():
        yield from (
            Interaction.objects.filter(lead_id__gte=low, lead_id__lte=high, type__in=sorted(types))
            .order_by("lead_id", "id")
            .values_list("id", "lead_id", "type", "properties", "occurred_at", "received_at")
            .iterator(chunk_size=10000)
        )
        return
    # What the rules read of the properties: a top-level key is fetched alone (properties -> 'key',
    # a small JSON value to decode instead of the whole document); a type whose rules follow a
    # dotted path gets its whole JSON. The engine sees the same values either way (_dig, form_slug_of).
    keys_by_type: dict[str, set[str]] = {}
    whole: set[str] = set()
    for itype, rules in ruleset.by_type.items():
        for rule in rules:
            if rule.property:
                if "." in rule.property:
                    whole.add(itype)
                else:
                    keys_by_type.setdefault(itype, set()).add(rule.property)
            if rule.use_channel_weight:
                keys_by_type.setdefault(itype, set()).update(("form_slug", "form"))
    for itype in whole:
        keys_by_type.pop(itype, None)
    keys = sorted({key for wanted in keys_by_type.values() for key in wanted})
    columns, params = [], []
    if whole:
        columns.append("CASE WHEN type IN (" + ", ".join(["%s"] * len(whole)) + ") THEN properties END")
        params += sorted(whole)
    else:
        columns.append("NULL")
    for key in keys:
        key_types = sorted(t for t, wanted in keys_by_type.items() if key in wanted)
        columns.append("CASE WHEN type IN (" + ", ".join(["%s"] * len(key_types)) + ") THEN properties -> %s END")
        params += [*key_types, key]
    # engine.effective_at in SQL (received_at when earlier than occurred_at): one timestamp per row to parse.
    sql = (
        "SELECT id, lead_id, type, CASE WHEN received_at IS NOT NULL AND received_at < occurred_at "  # noqa: S608
        f"THEN received_at ELSE occurred_at END, {', '.join(columns)} "
        f"FROM {Interaction._meta.db_table} WHERE lead_id >= %s AND lead_id <= %s "
        "AND type IN (" + ", ".join(["%s"] * len(types)) + ") ORDER BY lead_id, id"
    )
    params += [low, high, *sorted(types)]
    loads = json.loads
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            chunk = cursor.fetchmany(10000)
            if not chunk:
                return
            for row in chunk:
                interaction_id, lead_id, itype, at, properties = row[:5]
                if isinstance(properties, str):
                    properties = loads(properties)
                elif itype in keys_by_type:
                    properties = {
                        key: loads(value) if isinstance(value, str) else value
                        for key, value in zip(keys, row[5:], strict=True)
                        if value is not None
                    }
                yield interaction_id, lead_id, itype, properties, at, None


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _CopyText(dict):
    """str → its COPY text-format form (backslash, tab, newline, CR escaped); reasons repeat a
    lot (one text per rule and capping), so each distinct one is escaped once per batch."""

    def __missing__(self, value: str) -> str:
        escaped = self[value] = value.translate(_COPY_ESCAPES)
        return escaped


class _FloatText(dict):
    """float → repr, for the values that repeat (rule points and their sums); zero is never
    cached, so 0.0 and -0.0 keep their own texts."""

    def __missing__(self, value: float) -> str:
        text = repr(value)
        if value:
            self[value] = text
        return text


def copy_scores(scorers: dict, *, now) -> None:
    """Write a recompute batch's contributions and totals with COPY (PostgreSQL only).

    The COPY text is built line by line with f-strings (no csv module, no per-row lists):
    reasons are truncated and escaped once per distinct text, ``now`` is formatted once.
    """
    reasons = _CopyText()
    texts = _CopyText()
    floats = _FloatText()
    now_text = now.isoformat()
    null = "\\N"  # COPY's NULL marker (3.11 allows no backslash inside f-string braces)
    lines: list[str] = []
    append = lines.append
    for lead_id, scorer in scorers.items():
        for c in scorer.contributions:
            reason = c.reason
            append(
                f"{lead_id}\t{c.rule_id}\t{c.dimension}\t{c.source}\t{floats[c.points]}\t"
                f"{reasons[reason if len(reason) <= 500 else reason[:500]]}\t"
                f"{now_text if c.at is now else c.at.isoformat()}\t"
                f"{null if c.interaction_id is None else c.interaction_id}\t{texts[c.field]}\n"
            )
    contributions = "".join(lines)
    lines.clear()
    for lead_id, scorer in scorers.items():
        for t in scorer.totals.values():
            value_at = t.value_at
            append(
                f"{lead_id}\t{t.rule_id}\t{t.dimension}\t{t.matches}\t{floats[t.raw_points]}\t{floats[t.points]}\t"
                f"{t.value!r}\t{now_text if value_at is None or value_at is now else value_at.isoformat()}\t"
                f"{t.last_at.isoformat() if t.last_at else null}\n"
            )
    totals = "".join(lines)
    del lines
    with connection.cursor() as cursor:
        if contributions:
            cursor.copy_expert(
                f"COPY {ScoreContribution._meta.db_table} ({', '.join(CONTRIBUTION_COLUMNS)}) FROM STDIN",
                io.StringIO(contributions),
            )
        if totals:
            cursor.copy_expert(
                f"COPY {LeadRuleTotal._meta.db_table} ({', '.join(TOTAL_COLUMNS)}) FROM STDIN",
                io.StringIO(totals),
            )


@dataclass(slots=True)
class QueuedEvent:
    """A queued interaction as scoring reads it (the attributes of an ``Interaction`` it uses)."""

    pk: int
    lead_id: int
    type: str
    properties: dict
    occurred_at: object
    received_at: object


def pending_claim(limit: int) -> tuple[list[tuple[int, bool, object]], list[QueuedEvent]]:
    """Take up to ``limit`` rows of the deferred scoring queue, oldest first, skipping rows another
    worker holds: deleted now, back in the queue if the caller's transaction rolls back. Answers
    the (lead id, profile changed, queued at) rows and their interactions in id order (one
    statement on PostgreSQL)."""
    table = PendingScore._meta.db_table
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH c AS (DELETE FROM {table} WHERE id IN "  # noqa: S608 - model names
                f"(SELECT id FROM {table} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
                "RETURNING id, lead_id, interaction_id, profile, queued_at) "
                "SELECT c.id, c.lead_id, c.profile, c.queued_at, i.id, i.type, i.properties, i.occurred_at, "
                f"i.received_at FROM c LEFT JOIN {Interaction._meta.db_table} AS i ON i.id = c.interaction_id",
                [limit],
            )
            rows = sorted(cursor.fetchall())
        loads = json.loads
        events = sorted(
            (
                QueuedEvent(
                    pk=row[4],
                    lead_id=row[1],
                    type=row[5],
                    properties=loads(row[6]) if isinstance(row[6], str) else row[6],
                    occurred_at=row[7],
                    received_at=row[8],
                )
                for row in rows
                if row[4] is not None
            ),
            key=lambda e: e.pk,
        )
        return [(row[1], row[2], row[3]) for row in rows], events
    claimed = list(
        PendingScore.objects.order_by("id").values_list("id", "lead_id", "interaction_id", "profile", "queued_at")[
            :limit
        ]
    )
    PendingScore.objects.filter(pk__in=[row[0] for row in claimed]).delete()
    ids = [row[2] for row in claimed if row[2] is not None]
    events = [
        QueuedEvent(pk=pk, lead_id=lead_id, type=type_, properties=properties, occurred_at=at, received_at=received)
        for pk, lead_id, type_, properties, at, received in Interaction.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list("id", "lead_id", "type", "properties", "occurred_at", "received_at")
    ]
    return [(row[1], row[3], row[4]) for row in claimed], events

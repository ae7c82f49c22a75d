"""The leads app's PostgreSQL statements, by name, with the SQLite (embedded default) equivalent.

Services call these as steps; nothing else in the app forks on the database vendor. Generic
multi-row inserts and updates are :mod:`leadfunnel.sql`'s. Identifiers come from the models'
metadata; every value is a bound parameter.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.db import IntegrityError, connection, transaction

from leadfunnel.sql import array_casts, array_params, bulk_insert, bulk_update, is_postgres
from scoring.models import PendingScore

from .models import Company, FormSubmission, Interaction, InteractionKey, Lead, Visitor

_LEAD_FIELDS = [f for f in Lead._meta.concrete_fields if not f.primary_key]
_LEAD_ALL = list(Lead._meta.concrete_fields)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _lead_from_row(row: tuple) -> Lead:
    values = []
    for model_field, value in zip(_LEAD_ALL, row, strict=False):
        if hasattr(model_field, "from_db_value"):
            value = model_field.from_db_value(value, None, connection)
        values.append(value)
    return Lead.from_db(connection.alias, [f.attname for f in _LEAD_ALL], values)


def leads_upsert(items: list[tuple[Lead, str | None]], *, touch: bool = True) -> list[tuple[Lead, bool]]:
    """Insert each candidate lead, or lock and answer the stored one with its email: [(lead, created)].

    A lead without a company, new or stored, is linked to the company owning its domain (the
    second item), when there is one. An existing lead's ``last_activity_at`` only moves forward; ``touch`` also
    sets its ``updated_at``. PostgreSQL: one ``INSERT … SELECT FROM unnest … ON CONFLICT (email)
    DO UPDATE … RETURNING``; SQLite: an insert per lead in a savepoint, a locked read on conflict.
    """
    if not items:
        return []
    if not is_postgres():
        return [_sqlite_upsert(lead, domain, touch=touch) for lead, domain in items]
    _, params = array_params(_LEAD_FIELDS, [[getattr(lead, f.attname) for f in _LEAD_FIELDS] for lead, _ in items])
    params.append([domain for _, domain in items])
    sql = _leads_upsert_sql(touch)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(_lead_from_row(row[:-1]), bool(row[-1])) for row in cursor.fetchall()]


@lru_cache(maxsize=2)
def _leads_upsert_sql(touch: bool) -> str:
    """The statement of :func:`leads_upsert` (built once: it is on the intake's hot path)."""
    table = _q(Lead._meta.db_table)
    casts = [*array_casts(tuple(_LEAD_FIELDS)), "%s::varchar[]"]
    names = [f.column for f in _LEAD_FIELDS]
    selected = [f"COALESCE(v.{_q(n)}, c.id)" if n == "company_id" else f"v.{_q(n)}" for n in names]
    updated_at = "EXCLUDED.updated_at" if touch else f"{table}.updated_at"
    return (
        f"INSERT INTO {table} ({', '.join(_q(n) for n in names)}) "  # noqa: S608
        f"SELECT {', '.join(selected)} FROM unnest({', '.join(casts)}) AS v({', '.join(_q(n) for n in names)}, _domain) "
        f"LEFT JOIN {_q(Company._meta.db_table)} AS c ON c.{_q('domain')} = v._domain "
        f"ON CONFLICT ({_q('email')}) DO UPDATE SET "
        f"last_activity_at = GREATEST({table}.last_activity_at, EXCLUDED.last_activity_at), updated_at = {updated_at}, "
        f"company_id = COALESCE({table}.company_id, EXCLUDED.company_id) "
        f"RETURNING {', '.join(_q(f.column) for f in _LEAD_ALL)}, (xmax = 0)"
    )


def _sqlite_upsert(candidate: Lead, domain: str | None, *, touch: bool) -> tuple[Lead, bool]:
    if domain and candidate.company_id is None:
        candidate.company_id = Company.objects.filter(domain=domain).values_list("id", flat=True).first()
    try:
        with transaction.atomic():
            candidate.save(force_insert=True)
        return candidate, True
    except IntegrityError:
        lead = Lead.objects.select_for_update().get(email=candidate.email)
        changes = {}
        if candidate.last_activity_at and (
            not lead.last_activity_at or lead.last_activity_at < candidate.last_activity_at
        ):
            changes["last_activity_at"] = candidate.last_activity_at
        if touch:
            changes["updated_at"] = candidate.updated_at
        if lead.company_id is None and candidate.company_id is not None:
            changes["company_id"] = candidate.company_id
        if changes:
            Lead.objects.filter(pk=lead.pk).update(**changes)
            for name, value in changes.items():
                setattr(lead, name, value)
        return lead, False


def companies_insert_missing(companies: list[Company]) -> dict[str, int]:
    """{domain: company id} for these companies' domains, inserting those not stored yet
    (a concurrent writer's row wins: read committed lets the second statement see it)."""
    domains = [c.domain for c in companies]
    if is_postgres():
        fields = [f for f in Company._meta.concrete_fields if not f.primary_key]
        casts, params = array_params(fields, [[getattr(c, f.attname) for f in fields] for c in companies])
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_q(Company._meta.db_table)} ({', '.join(_q(f.column) for f in fields)}) "  # noqa: S608
                f"SELECT * FROM unnest({', '.join(casts)}) ON CONFLICT ({_q('domain')}) DO NOTHING",
                params,
            )
    else:
        for company in companies:
            try:
                with transaction.atomic():
                    company.save(force_insert=True)
            except IntegrityError:
                pass
    return dict(Company.objects.filter(domain__in=domains).values_list("domain", "id"))


def submission_insert(
    *, form_id: int, lead_id: int, payload: dict, ip: str | None, user_agent: str, key: str | None,
    now: datetime, properties: dict, queue_scoring: bool = False, profile_changed: bool = False,
) -> tuple[int, int]:  # fmt: skip
    """Store a raw form submission and its ``form_submit`` interaction (whose properties name
    the submission) and, with ``queue_scoring``, its row in the deferred scoring queue: one
    statement on PostgreSQL. Answers (submission id, interaction id)."""
    if not is_postgres():
        submission = FormSubmission.objects.create(
            form_id=form_id,
            lead_id=lead_id,
            payload=payload,
            ip=ip,
            user_agent=user_agent,
            idempotency_key=key,
            received_at=now,
        )
        interaction = Interaction.objects.create(
            lead_id=lead_id,
            type="form_submit",
            occurred_at=now,
            received_at=now,
            source="form",
            properties={**properties, "submission_id": submission.pk},
        )
        if queue_scoring:
            PendingScore.objects.create(lead_id=lead_id, interaction_id=interaction.pk, profile=profile_changed)
        return submission.pk, interaction.pk
    json_field = FormSubmission._meta.get_field("payload")
    params = [
        form_id,
        lead_id,
        json_field.get_db_prep_save(payload, connection),
        ip,
        user_agent,
        key,
        now,
        lead_id,
        now,
        now,
        json_field.get_db_prep_save(properties, connection),
    ]
    sql = (
        f"WITH s AS (INSERT INTO {_q(FormSubmission._meta.db_table)} "  # noqa: S608
        "(form_id, lead_id, payload, ip, user_agent, idempotency_key, is_spam, received_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, false, %s) RETURNING id), "
        f"i AS (INSERT INTO {_q(Interaction._meta.db_table)} "
        "(lead_id, type, occurred_at, received_at, properties, source, external_id) "
        "SELECT %s::bigint, 'form_submit', %s::timestamptz, %s::timestamptz, "
        "%s::jsonb || jsonb_build_object('submission_id', s.id), 'form', NULL FROM s RETURNING id, lead_id)"
        + (
            f", p AS (INSERT INTO {_q(PendingScore._meta.db_table)} (lead_id, interaction_id, profile, queued_at) "  # noqa: S608
            "SELECT i.lead_id, i.id, %s, %s FROM i) "
            if queue_scoring
            else " "
        )
        + "SELECT s.id, i.id FROM s, i"
    )
    if queue_scoring:
        params += [profile_changed, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


_INTERACTION_COLUMNS = ("lead_id", "type", "occurred_at", "received_at", "properties", "source", "external_id")


def interactions_insert(rows: list[Interaction], *, queue_scoring: bool = False) -> None:
    """Insert many interactions and set their ids (in input order); with ``queue_scoring`` each
    gets its row in the deferred scoring queue, in the same statement on PostgreSQL."""
    if not is_postgres():
        Interaction.objects.bulk_create(rows)
        if queue_scoring:
            PendingScore.objects.bulk_create([PendingScore(lead_id=r.lead_id, interaction_id=r.pk) for r in rows])
        return
    values = [tuple(getattr(r, c) for c in _INTERACTION_COLUMNS) for r in rows]
    if queue_scoring:
        ids = _interactions_insert_queued(values)
    else:
        ids = bulk_insert(Interaction, _INTERACTION_COLUMNS, values, returning=("id",))
    for row, (pk,) in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


def _interactions_insert_queued(values: list[tuple]) -> list[tuple]:
    fields = [Interaction._meta.get_field(name) for name in _INTERACTION_COLUMNS]
    casts, params = array_params(fields, values)
    pending = _q(PendingScore._meta.db_table)
    sql = (
        f"WITH i AS (INSERT INTO {_q(Interaction._meta.db_table)} ({', '.join(_q(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT * FROM unnest({', '.join(casts)}) RETURNING id, lead_id, received_at), "
        f"p AS (INSERT INTO {pending} (lead_id, interaction_id, profile, queued_at) "
        "SELECT lead_id, id, false, received_at FROM i) "
        "SELECT id FROM i"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def interaction_keys_insert(keys: list[tuple[str, str, int]]) -> set[int]:
    """Record integrations' event ids ``(source, external_id, interaction id)``; answers the ids of
    the interactions whose event id was already taken (by a concurrent request), after deleting
    them (and their scoring queue rows): they were duplicates."""
    if not keys:
        return set()
    kept = bulk_insert(
        InteractionKey,
        ("source", "external_id", "interaction_id"),
        keys,
        returning=("interaction_id",),
        on_conflict="(source, external_id) DO NOTHING",
    )
    lost = {interaction_id for *_, interaction_id in keys} - {row[0] for row in kept}
    if lost:
        PendingScore.objects.filter(interaction_id__in=lost).delete()
        Interaction.objects.filter(pk__in=lost).delete()
    return lost


_FLAG_EXPRESSIONS = {
    # Activity only moves forward; an unsubscribe or a bounce keeps its first time.
    "last_activity_at": "CASE WHEN v.last_activity_at IS NULL THEN t.last_activity_at "
    "ELSE GREATEST(t.last_activity_at, v.last_activity_at) END",
    "unsubscribed_at": "COALESCE(t.unsubscribed_at, v.unsubscribed_at)",
    "email_bounced_at": "COALESCE(t.email_bounced_at, v.email_bounced_at)",
}
_FLAGS = tuple(_FLAG_EXPRESSIONS)


def lead_flags_apply(per_lead: dict[int, dict[str, datetime]]) -> None:
    """One UPDATE for the leads' activity and unsubscribe/bounce marks (see ``_FLAG_EXPRESSIONS``)."""
    per_lead = {lead_id: entry for lead_id, entry in per_lead.items() if entry}
    if not per_lead:
        return
    if is_postgres():
        rows = [(lead_id, *(entry.get(name) for name in _FLAGS)) for lead_id, entry in sorted(per_lead.items())]
        bulk_update(Lead, _FLAGS, rows, expressions=_FLAG_EXPRESSIONS)
        return
    stored = Lead.objects.filter(pk__in=list(per_lead)).values_list("id", *_FLAGS)
    for lead_id, activity, unsubscribed, bounced in stored:  # SQLite (development default): small batches
        entry = per_lead[lead_id]
        updates = {}
        if entry.get("last_activity_at") and (not activity or activity < entry["last_activity_at"]):
            updates["last_activity_at"] = entry["last_activity_at"]
        for name, current in (("unsubscribed_at", unsubscribed), ("email_bounced_at", bounced)):
            if entry.get(name) and current is None:
                updates[name] = entry[name]
        if updates:
            Lead.objects.filter(pk=lead_id).update(**updates)


@lru_cache(maxsize=1)
def _visitor_upsert_sql() -> str:
    table = _q(Visitor._meta.db_table)
    return (
        f"INSERT INTO {table} ({_q('site_id')}, {_q('key')}, {_q('created_at')}, {_q('last_seen_at')}) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s) ON CONFLICT ({_q('site_id')}, {_q('key')}) "
        f"DO UPDATE SET {_q('last_seen_at')} = EXCLUDED.{_q('last_seen_at')} RETURNING {_q('id')}, {_q('lead_id')}"
    )


def visitor_upsert(*, site_id: int, key: str, now: datetime) -> tuple[int, int | None]:
    """Find or create the visitor ``key`` of a site and mark it seen, in one statement (the tracking
    endpoint's hot path): answers (visitor id, its lead id or None). The same SQL on PostgreSQL
    and SQLite (3.35+)."""
    with connection.cursor() as cursor:
        cursor.execute(_visitor_upsert_sql(), [site_id, key, now, now])
        visitor_id, lead_id = cursor.fetchone()
    return visitor_id, lead_id

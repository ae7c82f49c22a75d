"""The leads app's PostgreSQL statements, by name, with the SQLite (embedded default) equivalent.

Services call these as steps; nothing else in the app forks on the database vendor. Generic
multi-row inserts and updates are :mod:`leadfunnel.sql`'s. Identifiers come from the models'
metadata; every value is a bound parameter.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache

from django.db import IntegrityError, connection, transaction

from leadfunnel.sql import array_casts, array_params, bulk_insert, bulk_update, is_postgres
from scoring.models import PendingScore, ScoreContribution

from .models import Company, FormSubmission, ImportJob, Interaction, InteractionKey, Lead, Visitor

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


# --- erasure (leads.services.privacy) ----------------------------------------------------------

# A profile rule's reason quotes the lead's value: "Senior title: title is 'VP Sales'; capped at 30".
_QUOTED_VALUE = r": [^ :]+ is '.*'(; capped at [^;']*)?$"


def contributions_unquote(*, lead_id: int) -> int:
    """Drop the quoted profile values from a lead's score reasons (the points stay). One UPDATE."""
    if is_postgres():
        table = _q(ScoreContribution._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET reason = regexp_replace(reason, %s, '\\1') "  # noqa: S608
                "WHERE lead_id = %s AND source = 'profile' AND reason ~ %s",
                [_QUOTED_VALUE, lead_id, _QUOTED_VALUE],
            )
            return cursor.rowcount
    pattern = re.compile(_QUOTED_VALUE)
    rows = [
        ScoreContribution(pk=pk, reason=pattern.sub(r"\1", reason))
        for pk, reason in ScoreContribution.objects.filter(lead_id=lead_id, source="profile").values_list(
            "pk", "reason"
        )
        if pattern.search(reason)
    ]
    ScoreContribution.objects.bulk_update(rows, ["reason"])
    return len(rows)


def import_errors_erase(*, email: str) -> int:
    """Blank the error-report rows that name ``email`` (any case) in every import job: the row
    number stays, its address and message go. One UPDATE; answers how many jobs changed."""
    needle = email.lower()
    if is_postgres():
        table = _q(ImportJob._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET errors = ("  # noqa: S608
                "  SELECT coalesce(jsonb_agg(CASE WHEN strpos(lower(e::text), %s) > 0"
                "    THEN jsonb_build_object('row', e->'row', 'line', e->'line', 'email', '', 'error', 'erased')"
                "    ELSE e END ORDER BY n), '[]'::jsonb)"
                "  FROM jsonb_array_elements(errors) WITH ORDINALITY AS x(e, n))"
                " WHERE strpos(lower(errors::text), %s) > 0",
                [needle, needle],
            )
            return cursor.rowcount
    changed = []
    for job in ImportJob.objects.only("pk", "errors"):
        if needle in json.dumps(job.errors).lower():
            job.errors = [
                {"row": e.get("row"), "line": e.get("line"), "email": "", "error": "erased"}
                if needle in json.dumps(e).lower()
                else e
                for e in job.errors
            ]
            changed.append(job)
    ImportJob.objects.bulk_update(changed, ["errors"])
    return len(changed)


def leads_tags_update(
    *, lead_ids: list[int], add: list[str], remove: list[str], max_tags: int, now: datetime
) -> list[int]:
    """Add and remove tags on many leads in one statement (rows locked in id order); a lead keeps
    at most ``max_tags`` tags (tags beyond are not added). Answers the ids whose tags changed."""
    if not is_postgres():
        changed = []
        for lead in Lead.objects.select_for_update().filter(pk__in=lead_ids).order_by("pk"):
            tags = sorted((set(lead.tags or []) - set(remove)) | set(add))
            if len(tags) > max_tags:
                continue
            if tags != (lead.tags or []):
                Lead.objects.filter(pk=lead.pk).update(tags=tags, updated_at=now)
                changed.append(lead.pk)
        return changed
    table = _q(Lead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH locked AS (SELECT id, tags FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE), "  # noqa: S608
            "merged AS (SELECT l.id, l.tags AS old_tags, "
            'COALESCE((SELECT jsonb_agg(t ORDER BY t COLLATE "C") FROM ('
            "  SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(l.tags) = 'array' THEN l.tags ELSE '[]' END) "
            "  UNION SELECT unnest(%s::text[])) AS u(t) WHERE NOT t = ANY(%s::text[])), '[]'::jsonb) AS new_tags "
            "FROM locked l) "
            f"UPDATE {table} AS t SET tags = m.new_tags, updated_at = %s FROM merged m "
            "WHERE t.id = m.id AND m.new_tags IS DISTINCT FROM m.old_tags AND jsonb_array_length(m.new_tags) <= %s "
            "RETURNING t.id",
            [list(lead_ids), list(add), list(remove), now, max_tags],
        )
        return sorted(row[0] for row in cursor.fetchall())


# The keys two records of one person share, as SQL over the leads table aliased ``l``:
# (reason, key expression, condition for the key to count).
_DUPLICATE_KEYS = (
    (
        "same_name_and_company",
        "lower(btrim(l.first_name)) || ' ' || lower(btrim(l.last_name)) || '|' || "
        "COALESCE(l.company_id::text, 'n:' || lower(btrim(l.company_name)))",
        "btrim(l.first_name) <> '' AND btrim(l.last_name) <> '' "
        "AND (l.company_id IS NOT NULL OR btrim(l.company_name) <> '')",
    ),
    (
        "same_phone",
        "regexp_replace(l.phone, '[^0-9]', '', 'g')",
        "l.phone <> '' AND length(regexp_replace(l.phone, '[^0-9]', '', 'g')) >= 7",
    ),
    (
        "email_variant",
        # The mailbox without its +tag, and for Gmail without dots, under one domain name.
        "CASE WHEN split_part(l.email, '@', 2) IN ('gmail.com', 'googlemail.com') "
        "THEN replace(split_part(split_part(l.email, '@', 1), '+', 1), '.', '') || '@gmail.com' "
        "ELSE split_part(split_part(l.email, '@', 1), '+', 1) || '@' || split_part(l.email, '@', 2) END",
        "TRUE",
    ),
)


# A key shared by more leads than this is not a person but placeholder data (a switchboard number,
# "info@"): such groups are left out rather than listing every pair of them.
DUPLICATE_GROUP_MAX = 20
DUPLICATES_WORK_MEM = "64MB"


def possible_duplicates(*, lead_id: int | None, limit: int, offset: int) -> tuple[list[tuple], int]:
    """Pairs of leads (lower id first) sharing a duplicate key (see ``_DUPLICATE_KEYS``), with the
    reasons, newest pair first: ([(first id, second id, [reasons])], total pairs). ``lead_id``:
    only pairs with that lead. PostgreSQL: one statement computes every lead's keys and groups
    them by key (no pair of leads is compared in Python); each group of 2 to
    ``DUPLICATE_GROUP_MAX`` leads gives its pairs. It reads every lead: a review page's query
    (about 3 s at 100,000 leads on the shared 2-core machine at load 8), not a hot path's."""
    if not is_postgres():
        return _possible_duplicates_python(lead_id=lead_id, limit=limit, offset=offset)
    table = _q(Lead._meta.db_table)
    keys = " UNION ALL ".join(
        # Byte-wise ("C") comparison: grouping the keys need not sort them by the locale's rules.
        f"SELECT l.id, '{reason}' AS reason, ({expression}) COLLATE \"C\" AS k FROM {table} l WHERE {condition}"  # noqa: S608
        for reason, expression, condition in _DUPLICATE_KEYS
    )
    mine = ""
    params: list = [DUPLICATE_GROUP_MAX]
    if lead_id is not None:
        mine = "AND (a.id = %s OR b.id = %s)"
        params += [lead_id, lead_id]
    sql = (
        f"WITH keys AS ({keys}), "  # noqa: S608 - our key expressions; values are parameters
        "groups AS (SELECT reason, array_agg(id ORDER BY id) AS ids FROM keys GROUP BY reason, k "
        "HAVING count(*) BETWEEN 2 AND %s), "
        "pairs AS (SELECT a.id AS first_id, b.id AS second_id, array_agg(DISTINCT g.reason ORDER BY g.reason) AS reasons "
        f"FROM groups g, unnest(g.ids) AS a(id), unnest(g.ids) AS b(id) WHERE a.id < b.id {mine} "
        "GROUP BY a.id, b.id) "
        "SELECT first_id, second_id, reasons, count(*) OVER () FROM pairs "
        "ORDER BY second_id DESC, first_id DESC LIMIT %s OFFSET %s"
    )
    # Group the keys in memory (a hash aggregate), not in an on-disk sort: set for this transaction only.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [DUPLICATES_WORK_MEM])
        cursor.execute(sql, [*params, limit, offset])
        rows = cursor.fetchall()
    total = rows[0][3] if rows else 0
    return [(a, b, list(reasons)) for a, b, reasons, _ in rows], total


def _duplicate_keys_python(lead) -> list[tuple[str, str]]:
    """SQLite (the embedded development default): the same keys as ``_DUPLICATE_KEYS``."""
    keys = []
    first, last = lead["first_name"].strip().lower(), lead["last_name"].strip().lower()
    company = str(lead["company_id"]) if lead["company_id"] else ("n:" + lead["company_name"].strip().lower())
    if first and last and company != "n:":
        keys.append(("same_name_and_company", f"{first} {last}|{company}"))
    digits = "".join(ch for ch in lead["phone"] if ch.isdigit())
    if len(digits) >= 7:
        keys.append(("same_phone", digits))
    local, _, domain = lead["email"].partition("@")
    local = local.split("+")[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    keys.append(("email_variant", f"{local}@{domain}"))
    return keys


def _possible_duplicates_python(*, lead_id: int | None, limit: int, offset: int) -> tuple[list[tuple], int]:
    groups: dict[tuple[str, str], list[int]] = {}
    fields = ("id", "first_name", "last_name", "company_id", "company_name", "phone", "email")
    for lead in Lead.objects.values(*fields).iterator():
        for key in _duplicate_keys_python(lead):
            groups.setdefault(key, []).append(lead["id"])
    pairs: dict[tuple[int, int], set[str]] = {}
    for (reason, _), ids in groups.items():
        if len(ids) > DUPLICATE_GROUP_MAX:
            continue
        ids.sort()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if lead_id is None or lead_id in (a, b):
                    pairs.setdefault((a, b), set()).add(reason)
    ordered = sorted(pairs.items(), key=lambda item: (item[0][1], item[0][0]), reverse=True)
    return [(a, b, sorted(reasons)) for (a, b), reasons in ordered[offset : offset + limit]], len(ordered)


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

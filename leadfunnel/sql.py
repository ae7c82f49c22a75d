"""Set-based writes, written once: insert, update and upsert many rows in one statement.

On PostgreSQL each helper sends one statement whose values travel as one array per column
(``unnest(%s::type[], …)``), so its Python and parse cost stays flat in the number of rows.
On SQLite (the embedded default) the ORM's bulk methods do the same work.
Identifiers come from the model's metadata; every value is a bound parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    # get_field knows attnames too ("owner_id" is the owner foreign key's column).
    return [model._meta.get_field(name) for name in names]


@lru_cache(maxsize=64)
def array_casts(fields: tuple[models.Field, ...]) -> tuple[str, ...]:
    """The ``unnest`` argument of each column: ``%s::<type>[]`` (worked out once per column list)."""
    return tuple(
        f"%s::{field.target_field.rel_db_type(connection) if field.is_relation else field.db_type(connection)}[]"
        for field in fields
    )


def array_params(fields: Sequence[models.Field], rows: Sequence[Sequence]) -> tuple[list[str], list[list]]:
    """One ``unnest`` argument per column: its cast and its values (JSON encoded for JSON columns)."""
    fields = tuple(fields)
    columns = []
    for n, field in enumerate(fields):
        values = [row[n] for row in rows]
        if isinstance(field, models.JSONField):
            values = [None if v is None else json.dumps(v, cls=DjangoJSONEncoder) for v in values]
        columns.append(values)
    return list(array_casts(fields)), columns


def bulk_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    *,
    returning: Sequence[str] = (),
    on_conflict: str = "",
) -> list[tuple]:
    """INSERT ``rows`` (tuples in ``columns`` order); answers the ``returning`` columns of the
    inserted rows in input order. ``on_conflict``: e.g. ``"(email) DO NOTHING"`` (rows skipped by
    the conflict are then missing from the answer) or ``"(lead_id, rule_id) DO UPDATE SET …"``."""
    if not rows:
        return []
    if not is_postgres():
        return _orm_insert(model, columns, rows, returning=returning, on_conflict=on_conflict)
    quote = connection.ops.quote_name
    fields = _fields(model, columns)
    casts, params = array_params(fields, rows)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT * FROM unnest({', '.join(casts)})"
        + (f" ON CONFLICT {on_conflict}" if on_conflict else "")
        + (f" RETURNING {', '.join(quote(c) for c in returning)}" if returning else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if returning else []


def _orm_insert(model, columns, rows, *, returning, on_conflict) -> list[tuple]:
    objs = [model(**dict(zip(columns, row, strict=True))) for row in rows]
    if not on_conflict:
        model.objects.bulk_create(objs, batch_size=500)
        return [tuple(getattr(obj, c) for c in returning) for obj in objs] if returning else []
    target, _, action = on_conflict.partition(")")
    unique = [c.strip() for c in target.strip(" (").split(",")]
    if action.strip().upper() == "DO NOTHING":
        # One at a time, so the answer names exactly the rows inserted (SQLite: small batches).
        inserted = []
        for obj in objs:
            filters = {name: getattr(obj, name) for name in unique}
            if not model.objects.filter(**filters).exists():
                obj.save(force_insert=True)
                inserted.append(tuple(getattr(obj, c) for c in returning))
        return inserted if returning else []
    updated = [c for c in columns if c not in unique]
    model.objects.bulk_create(
        objs,
        batch_size=500,
        update_conflicts=True,
        unique_fields=[f.name for f in _fields(model, unique)],
        update_fields=[f.name for f in _fields(model, updated)],
    )
    return [tuple(getattr(obj, c) for c in returning) for obj in objs] if returning else []


def bulk_update(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    *,
    key: str = "id",
    expressions: Mapping[str, str] | None = None,
) -> None:
    """UPDATE many rows, each to its own values: ``rows`` are tuples of (key, *columns).

    ``expressions`` (PostgreSQL only) replaces the plain assignment of a column by SQL over the
    table ``t`` and the new values ``v``, e.g. ``{"x": "GREATEST(t.x, v.x)"}``.
    """
    if not rows:
        return
    expressions = dict(expressions or {})
    if not is_postgres():
        if expressions:
            raise ValueError("bulk_update: expressions need PostgreSQL; pass the final values elsewhere")
        objs = [model(**{key: row[0]}, **dict(zip(columns, row[1:], strict=True))) for row in rows]
        model.objects.bulk_update(objs, [f.name for f in _fields(model, columns)], batch_size=500)
        return
    quote = connection.ops.quote_name
    fields = _fields(model, [key, *columns])
    casts, params = array_params(fields, rows)
    names = [f.column for f in fields]
    assignments = ", ".join(
        f"{quote(field.column)} = {expressions.get(name, f'v.{quote(field.column)}')}"
        for name, field in zip(columns, fields[1:], strict=True)
    )
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM unnest({', '.join(casts)}) AS v({', '.join(quote(n) for n in names)}) "
        f"WHERE t.{quote(names[0])} = v.{quote(names[0])}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)

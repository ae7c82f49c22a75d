"""Writing rows with PostgreSQL's COPY, the reason a million interactions load in seconds.

A :class:`Copier` streams one model's rows in batches and fills the columns the loaders leave
out from the model's defaults, so a new field with a default needs no change here; a field
without one fails the load loudly instead of writing a wrong row.
"""

import io
import json
from datetime import UTC, date, datetime

from django.core.management.base import CommandError
from django.db import connection, models

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).translate(_ESCAPES)
    return str(value)


class Copier:
    """COPY rows of one model: the caller gives values for some columns, model defaults fill the rest."""

    def __init__(self, cursor, model: type[models.Model], columns: list[str], batch_size: int) -> None:
        self.cursor = cursor
        self.batch_size = batch_size
        fields = {f.column: f for f in model._meta.concrete_fields}
        unknown = set(columns) - set(fields)
        if unknown:
            raise CommandError(f"{model.__name__} has no column(s) {sorted(unknown)}")
        extra = []
        for column, field in fields.items():
            if column in columns or (field.primary_key and isinstance(field, models.AutoField)):
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                default = datetime.now(UTC)
            elif field.has_default():
                default = field.get_default()
            elif field.null:
                default = None
            else:
                raise CommandError(f"{model.__name__}.{field.name} has no default; seed_bench must fill it")
            extra.append((column, _text(default)))
        self.suffix = "".join("\t" + text for _, text in extra)
        all_columns = [*columns, *(c for c, _ in extra)]
        quoted = ", ".join(connection.ops.quote_name(c) for c in all_columns)
        self.sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({quoted}) FROM STDIN"
        self.buffer = io.StringIO()
        self.pending = 0
        self.count = 0

    def add(self, values) -> None:
        self.buffer.write("\t".join(map(_text, values)))
        self.buffer.write(self.suffix)
        self.buffer.write("\n")
        self.pending += 1
        if self.pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.buffer.seek(0)
        self.cursor.copy_expert(self.sql, self.buffer)
        self.count += self.pending
        self.buffer = io.StringIO()
        self.pending = 0


def reset_sequence(cursor, model: type[models.Model]) -> None:
    table = model._meta.db_table
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE((SELECT MAX(id) FROM {connection.ops.quote_name(table)}), 0) + 1, false)",  # noqa: S608 - table name from the model
        [table],
    )

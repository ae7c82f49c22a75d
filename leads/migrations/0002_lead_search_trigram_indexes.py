"""Trigram indexes for the leads search (name, email, company contains a word).

The leads list, the dashboard and the CSV export filter with ``icontains``, which
PostgreSQL runs as ``UPPER(col::text) LIKE UPPER('%word%')``; these GIN indexes on
exactly those expressions let it use a bitmap index scan instead of reading every lead.
PostgreSQL only (SQLite has no pg_trgm); skipped with a warning when the database
role may not create the extension.
"""

import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)

INDEXES = (
    ("lead_email_trgm_idx", "leads_lead", "email"),
    ("lead_first_name_trgm_idx", "leads_lead", "first_name"),
    ("lead_last_name_trgm_idx", "leads_lead", "last_name"),
    ("lead_company_name_trgm_idx", "leads_lead", "company_name"),
    ("company_name_trgm_idx", "leads_company", "name"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:
        logger.warning("pg_trgm not available (%s): the leads search runs without trigram indexes", exc)
        return
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]

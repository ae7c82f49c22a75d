"""A trigram index on the interactions' URL, as segments compare it.

A segment's behaviour condition on the URL ("page_view whose url contains /pricing") runs as
``UPPER((properties ->> 'url')::text) LIKE UPPER('%/pricing%')``; without this GIN index on exactly
that expression PostgreSQL reads every interaction of the type and window to test it (and, with no
statistics on the expression, guesses a handful of matches). PostgreSQL only; skipped with a warning
when the database role may not create pg_trgm (as for the leads search's indexes, 0002).
"""

import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)

NAME = "interaction_url_trgm_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:
        logger.warning("pg_trgm not available (%s): segment URL conditions run without a trigram index", exc)
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {NAME} ON leads_interaction "
        "USING gin ((UPPER((properties ->> 'url')::text)) gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [("leads", "0013_segment_behaviour_indexes")]

    operations = [migrations.RunPython(create_index, drop_index)]

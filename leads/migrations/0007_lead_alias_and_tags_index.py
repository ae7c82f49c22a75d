"""Merging duplicates: ``LeadAlias`` (a merged lead's email → the surviving lead). The tag
filter's GIN index (``jsonb_path_ops``: serves ``tags @> '["tag"]'``), PostgreSQL only."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def create_tags_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS lead_tags_gin_idx ON leads_lead USING gin (tags jsonb_path_ops)"
        )


def drop_tags_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS lead_tags_gin_idx")


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0006_interaction_without_unique_constraint"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LeadAlias",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254, unique=True)),
                ("merged_lead_id", models.BigIntegerField(help_text="The id the merged lead had.")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "lead",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="aliases", to="leads.lead"
                    ),
                ),
            ],
            options={"verbose_name_plural": "lead aliases"},
        ),
        migrations.RunPython(create_tags_index, drop_tags_index),
    ]

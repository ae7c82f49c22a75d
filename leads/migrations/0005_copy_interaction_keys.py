"""Data migration: every interaction recorded with an integration's event id gets its key row."""

from django.db import migrations

BATCH = 5000


def copy_keys(apps, schema_editor):
    Interaction = apps.get_model("leads", "Interaction")
    InteractionKey = apps.get_model("leads", "InteractionKey")
    last = 0
    while True:
        rows = list(
            Interaction.objects.filter(pk__gt=last, external_id__isnull=False)
            .order_by("pk")
            .values_list("pk", "source", "external_id")[:BATCH]
        )
        if not rows:
            return
        InteractionKey.objects.bulk_create(
            [InteractionKey(interaction_id=pk, source=source, external_id=external_id) for pk, source, external_id in rows],
            ignore_conflicts=True,
        )
        last = rows[-1][0]


def drop_keys(apps, schema_editor):
    apps.get_model("leads", "InteractionKey").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0004_interaction_keys_apart"),
    ]

    operations = [migrations.RunPython(copy_keys, drop_keys)]

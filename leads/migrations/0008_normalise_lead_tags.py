"""Existing tags as tags are now stored: trimmed, inner whitespace collapsed, lower-case, at most
50 characters, unique and sorted (what ``leads.intake.normalise_tags`` gives every writer)."""

from django.db import migrations

BATCH = 2000


def normalise(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    last = 0
    while True:
        rows = list(
            Lead.objects.filter(pk__gt=last).exclude(tags=[]).order_by("pk").values_list("pk", "tags")[:BATCH]
        )
        if not rows:
            return
        for pk, tags in rows:
            clean = sorted(
                {" ".join(str(t).split()).lower()[:50] for t in (tags if isinstance(tags, list) else [])} - {""}
            )
            if clean != tags:
                Lead.objects.filter(pk=pk).update(tags=clean)
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("leads", "0007_lead_alias_and_tags_index")]

    # Reverse: nothing to undo (the original spelling of a tag is not kept).
    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]

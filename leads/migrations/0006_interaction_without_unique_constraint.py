from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0005_copy_interaction_keys"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="interaction",
            name="interaction_external_id_uniq",
        ),
    ]



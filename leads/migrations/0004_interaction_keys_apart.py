from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0003_funnel_reports"),
    ]

    operations = [
        migrations.CreateModel(
            name="InteractionKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=100)),
                ("external_id", models.CharField(max_length=200)),
                ("interaction_id", models.BigIntegerField()),
            ],
        ),
        migrations.AddConstraint(
            model_name="interactionkey",
            constraint=models.UniqueConstraint(fields=("source", "external_id"), name="interaction_key_uniq"),
        ),
    ]

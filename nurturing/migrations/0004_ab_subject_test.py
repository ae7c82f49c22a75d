from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("nurturing", "0003_write_path_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="step",
            name="ab_winner",
            field=models.CharField(blank=True, default="", max_length=1),
        ),
        migrations.AddField(
            model_name="step",
            name="ab_decided_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="step",
            name="ab_started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="variant",
            field=models.CharField(blank=True, default="", max_length=1),
        ),
    ]

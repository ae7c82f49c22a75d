"""Each lead's consent status from the boolean it had: consent given → opt_in, else none."""

from django.db import migrations


def forward(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    Lead.objects.filter(consent=True).update(consent_status="opt_in")
    Lead.objects.filter(consent=False).update(consent_status="none")


def backward(apps, schema_editor):
    # The boolean is kept in step with the status, so it already says "opted in" or not.
    Lead = apps.get_model("leads", "Lead")
    Lead.objects.filter(consent_status="opt_in").update(consent=True)
    Lead.objects.exclude(consent_status="opt_in").update(consent=False)


class Migration(migrations.Migration):
    dependencies = [("leads", "0009_consent_status_and_double_opt_in")]

    operations = [migrations.RunPython(forward, backward)]

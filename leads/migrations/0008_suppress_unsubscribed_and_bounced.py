"""Data: the addresses of leads already unsubscribed or bounced go on the suppression list, so the
list binds every send from the start (the list itself arrived in 0007). Reverse: the rows this
added (reasons unsubscribed / hard_bounce with no author) are removed."""

from django.db import migrations
from django.utils import timezone
from django.utils.crypto import salted_hmac

BATCH = 2000


def _hash(email: str) -> str:
    # As leads.services.suppression.suppression_hash (kept here so the migration stays as written).
    return salted_hmac("leadfunnel.suppression", email.strip().lower(), algorithm="sha256").hexdigest()


def _mask(email: str) -> str:
    local, _, domain = email.strip().lower().partition("@")
    return f"{local[:1]}***@{domain}"[:254]


def forwards(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    Suppression = apps.get_model("leads", "Suppression")
    now = timezone.now()
    rows = (
        Lead.objects.filter(erased_at__isnull=True)
        .exclude(unsubscribed_at__isnull=True, email_bounced_at__isnull=True)
        .values_list("email", "unsubscribed_at")
        .iterator(chunk_size=BATCH)
    )
    batch = []
    for email, unsubscribed_at in rows:
        reason = "unsubscribed" if unsubscribed_at else "hard_bounce"
        batch.append(Suppression(email_hash=_hash(email), hint=_mask(email), reason=reason, created_at=now))
        if len(batch) >= BATCH:
            Suppression.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    Suppression.objects.bulk_create(batch, ignore_conflicts=True)


def backwards(apps, schema_editor):
    Suppression = apps.get_model("leads", "Suppression")
    Suppression.objects.filter(reason__in=["unsubscribed", "hard_bounce"], created_by__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("leads", "0007_privacy_erasure_suppression")]

    operations = [migrations.RunPython(forwards, backwards)]

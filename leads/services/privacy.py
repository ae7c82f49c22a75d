"""Erasing a person: their personal data leaves every table, the funnel's history stays.

The lead row is kept, anonymised (``erased-<id>@erased.invalid``, names and contact blank,
``erased_at`` set), so the stage history, the counts and the scores stay attached to it; from
then on it takes no new events, no stage changes, no nurturing and no sends (its address is on
the suppression list, as a hash). Every table is changed with one set-based statement, all in one
transaction, and the erasure itself is audited with counts only.

Which tables hold what is declared by their models (:mod:`leads.privacy`); the few that name a
person without pointing at the lead (rep notifications, webhook deliveries, the outbox, the
audit log, import error reports, spam submissions) are found by the address in their text, and
so are the uploaded import files (rewritten without the person's rows after the commit:
:mod:`leads.import_files`).
"""

from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Conflict, NotFound
from leadfunnel.models import AuditEvent, Notification, OutboxMessage, WebhookDelivery
from leadfunnel.outbox import outbox_publish

from .. import sql
from ..import_files import import_files_erase, import_files_naming
from ..models import Company, FormSubmission, Interaction, InteractionKey, Lead, SuppressionReason
from ..privacy import personal_data_models
from .suppression import suppression_add

ERASED_DOMAIN = "erased.invalid"

# The lead's own columns an erasure blanks (the company name as typed, too: a sole trader's names
# it). Attribution (source, channel, UTM, first form), the linked company, size band, industry,
# country, stage, owner history and scores stay: the funnel's figures are computed from them.
PROFILE_ERASE = {
    "company_name": "",
    "first_name": "",
    "last_name": "",
    "title": "",
    "phone": "",
    "city": "",
    "time_zone": "",
    "linkedin": "",
    "twitter": "",
    "custom_fields": {},
    "first_page_url": "",
    "consent_source": "",
}


def erased_email(lead_id: int) -> str:
    return f"erased-{lead_id}@{ERASED_DOMAIN}"


def _mentions(model, field: str, text: str) -> Q:
    """Rows whose ``field`` (text or JSON) contains ``text``, any case: a subquery, so the
    UPDATE stays one statement."""
    matching = (
        model.objects.annotate(_as_text=Cast(field, models.TextField())).filter(_as_text__icontains=text).values("pk")
    )
    return Q(pk__in=matching)


def lead_erase(*, lead: int, actor) -> dict[str, int]:
    """Erase the person behind lead ``lead``. Answers how many rows of each kind were changed.

    404 for an unknown lead, 409 for one already erased. Queries: a fixed number per table
    (one statement each), whatever the person's history.
    """
    with transaction.atomic():
        locked = Lead.objects.select_for_update().filter(pk=lead).first()
        if locked is None:
            raise NotFound(f"No lead with id {lead}.")
        if locked.erased_at is not None:
            raise Conflict(f"This lead was already erased ({locked.erased_at:%Y-%m-%d %H:%M} UTC).", code="erased")
        now = timezone.now()
        email = locked.email
        removed: dict[str, int] = {}

        # The address leaves in clear and stays as a hash: nothing may be sent to it again.
        suppression_add(emails=[email], reason=SuppressionReason.ERASED, actor=actor)

        # Event ids an integration sent may carry the address; they only serve de-duplication.
        removed["interaction_keys"] = InteractionKey.objects.filter(
            interaction_id__in=Interaction.objects.filter(lead_id=lead, external_id__isnull=False).values("pk")
        ).delete()[0]

        for model, spec in personal_data_models():
            rows = model.objects.filter(**{spec.lead: lead})
            if model is FormSubmission:  # and spam submissions (no lead) that gave the address
                rows = model.objects.filter(
                    Q(lead_id=lead) | (Q(lead__isnull=True) & _mentions(model, "payload", email))
                )
            if spec.delete:
                removed[spec.kind] = rows.delete()[0]
            elif spec.erase:
                removed[spec.kind] = rows.update(**spec.erase)
        removed["score_reasons"] = sql.contributions_unquote(lead_id=lead)

        # Copies that name the person without pointing at the lead row.
        link = f"/leads/{lead}/"
        removed["notifications"] = Notification.objects.filter(
            _mentions(Notification, "subject", email) | _mentions(Notification, "body", email) | Q(body__contains=link)
        ).update(
            subject="About a lead whose data was erased",
            body="This notification was about a person whose data has since been erased.",
        )
        removed["webhook_deliveries"] = WebhookDelivery.objects.filter(
            Q(payload__data__lead_id=lead) | _mentions(WebhookDelivery, "payload", email)
        ).update(payload={"data": {"lead_id": lead, "erased": True}}, last_response_body="", last_error="")
        # A side effect still pending about the person has nothing left to act on.
        removed["outbox_messages"] = OutboxMessage.objects.filter(_mentions(OutboxMessage, "payload", email)).update(
            payload={"lead_id": lead, "erased": True}, dispatched_at=Coalesce("dispatched_at", now)
        )
        removed["audit_rows"] = AuditEvent.objects.filter(
            Q(object_type=Lead._meta.label_lower, object_id=str(lead)) | _mentions(AuditEvent, "changes", email)
        ).update(changes={})
        removed["import_error_reports"] = sql.import_errors_erase(email=email)
        # The uploaded CSV files that hold the person's rows are rewritten without them once this
        # commits (files are not transactional: a rollback leaves them as they were).
        files = import_files_naming(email=email)
        removed["import_files"] = len(files)
        transaction.on_commit(lambda: import_files_erase(job_ids=files, email=email))

        # A company that is only this person (a sole trader's name and domain) goes with them; a
        # company with other people in it is an organisation's record and stays.
        others = Lead.objects.filter(company=OuterRef("pk")).exclude(pk=lead)
        removed["companies"] = (
            Company.objects.filter(pk=locked.company_id)
            .exclude(Exists(others))
            .update(name="Erased company", domain=None, city="", updated_at=now)
        )
        removed["profile"] = Lead.objects.filter(pk=lead).update(
            **PROFILE_ERASE,
            email=erased_email(lead),
            erased_at=now,
            # Out of every queue and nurture check at once; the history keeps who owned it.
            sla_due_at=None,
            unsubscribed_at=Coalesce("unsubscribed_at", now),
            updated_at=now,
        )
        counts = dict(sorted(removed.items()))
        audit_record(
            actor=actor, action="lead.erased", object_type=Lead._meta.label_lower, object_id=str(lead), changes=counts
        )
        # Nurturing exits the lead's enrolments (leads reaches nurturing through the outbox).
        outbox_publish(topic="lead.erased", payload={"lead_id": lead})
    return counts

"""Tags on many leads at once (the leads list's bulk bar): one UPDATE for the whole selection."""

from django.db import transaction
from django.utils import timezone

from leadfunnel.audit import audit_record_many
from leadfunnel.errors import ValidationFailed

from .. import intake, sql

MAX_BULK_TAG_LEADS = 500


@transaction.atomic
def leads_tag(*, lead_ids: list[int], add: list[str] = (), remove: list[str] = (), actor=None) -> list[int]:
    """Add and/or remove tags (normalised: trimmed, lower-case, at most 50 characters) on these
    leads, in one statement; answers the ids of the leads whose tags changed (each audited)."""
    add_tags = intake.normalise_tags(list(add), field_name="add")
    remove_tags = intake.normalise_tags(list(remove), field_name="remove")
    if not add_tags and not remove_tags:
        raise ValidationFailed("tag: Give a tag to add or remove.", fields={"tag": ["Give a tag."]})
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        raise ValidationFailed("ids: Select some leads.", fields={"ids": ["Select some leads."]})
    if len(ids) > MAX_BULK_TAG_LEADS:
        raise ValidationFailed(
            f"ids: At most {MAX_BULK_TAG_LEADS} leads at a time.", fields={"ids": ["Too many leads."]}
        )
    changed = sql.leads_tags_update(
        lead_ids=ids, add=add_tags, remove=remove_tags, max_tags=intake.MAX_TAGS_PER_LEAD, now=timezone.now()
    )
    if changed:
        audit_record_many(
            actor=actor,
            action="lead.tagged",
            object_type="leads.lead",
            items=[(str(lead_id), {"added": add_tags, "removed": remove_tags}) for lead_id in changed],
        )
    return changed

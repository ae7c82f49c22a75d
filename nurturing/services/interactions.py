"""Recording what nurturing observes (sent, opened, clicked, unsubscribed, bounced).

Goes through the leads app's interaction service when it provides one (so the
timeline, scoring, promotion and the ``interactions.recorded`` event stay in one
place); otherwise stores the rows, scores them and publishes the event itself.
"""

from django.utils import timezone

from leadfunnel.outbox import outbox_publish
from leads.models import Interaction, Lead

SOURCE = "nurturing"


def _leads_services():
    from leads import services

    return services


def interaction_record_one(*, lead: Lead, type: str, properties: dict, occurred_at=None) -> Interaction:
    services = _leads_services()
    occurred_at = occurred_at or timezone.now()
    record = getattr(services, "interaction_record", None)
    if record is not None:
        return record(lead=lead, type=type, properties=properties, occurred_at=occurred_at, source=SOURCE)
    from scoring.services import score_interactions

    interaction = Interaction.objects.create(
        lead=lead, type=type, properties=properties, occurred_at=occurred_at, source=SOURCE
    )
    score_interactions(lead=lead, interactions=[interaction])
    outbox_publish(topic="interactions.recorded", payload={"lead_ids": [lead.pk], "types": [type]})
    return interaction


def interactions_record_many(*, interactions: list[Interaction]) -> list[Interaction]:
    """Many unsaved Interaction rows (several leads) in one go: one INSERT, one scoring call, one event."""
    if not interactions:
        return []
    services = _leads_services()
    record_bulk = getattr(services, "interactions_record_bulk", None)
    if record_bulk is not None:
        return record_bulk(interactions=interactions)
    from scoring.services import score_interactions_bulk

    rows = Interaction.objects.bulk_create(interactions)
    score_interactions_bulk(interactions=rows)
    outbox_publish(
        topic="interactions.recorded",
        payload={
            "lead_ids": sorted({row.lead_id for row in rows}),
            "types": sorted({row.type for row in rows}),
        },
    )
    return rows

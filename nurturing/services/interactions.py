"""Recording what nurturing observes (sent, opened, clicked, unsubscribed, bounced).

Goes through the leads app's interaction services, so the timeline, the lead's
flags (unsubscribed/bounced/last activity), scoring and promotion, and the one
``interactions.recorded`` event per batch all happen in one place.
"""

import logging

from django.utils import timezone

from leads.models import Interaction, Lead
from leads.services import interaction_record, interactions_record_bulk

logger = logging.getLogger(__name__)
SOURCE = "nurturing"


def interaction_record_one(*, lead: Lead, type: str, properties: dict, occurred_at=None) -> Interaction:
    interaction, _ = interaction_record(
        type=type, lead=lead.pk, occurred_at=occurred_at or timezone.now(), properties=properties, source=SOURCE
    )
    return interaction


def interactions_record_many(*, events: list[dict]) -> int:
    """Many events (several leads; ``{"lead", "type", "occurred_at", "properties"}``) in one
    set-based call of the leads app. Returns how many were stored."""
    if not events:
        return 0
    result = interactions_record_bulk(events=[{**event, "source": SOURCE} for event in events], source=SOURCE)
    if result.errors:
        logger.error("nurturing interactions rejected: %s", result.errors[:5])
    return result.accepted

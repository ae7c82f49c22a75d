"""What people do on a lead's page: edit its profile, and log a note, a call or a meeting.

Who may: marketers and admins on any lead, and the sales rep who owns the lead (the person
talking to it learns its title and phone first). Other reps read the lead but do not write it.
Profile edits go through :func:`.profile.lead_update_profile`; notes, calls and meetings are
interactions of type ``note`` / ``call`` / ``meeting`` recorded by
:func:`.interactions.interaction_record`, so the timeline shows them and scoring rules can
match them like any other interaction.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadfunnel.errors import Forbidden, NotFound, ValidationFailed
from leadfunnel.roles import is_admin, is_marketer, is_sales

from ..models import SALES_ACTIVITY_TYPES, Interaction, InteractionType, Lead
from .interactions import interaction_record
from .profile import lead_update_profile

CALL_OUTCOMES = ("connected", "left_voicemail", "no_answer", "wrong_number")
MAX_NOTE_LENGTH = 5000
MAX_DURATION_MINUTES = 24 * 60
# A person's clock may run a little ahead; a meeting logged for tomorrow is a mistake.
MAX_FUTURE_SKEW_FOR_PEOPLE = timedelta(minutes=5)


def lead_can_edit(*, lead: Lead, actor) -> bool:
    """Marketers and admins, and the rep who owns the lead."""
    if is_admin(actor) or is_marketer(actor):
        return True
    return is_sales(actor) and lead.owner_id is not None and lead.owner_id == getattr(actor, "pk", None)


def _lead_for(lead: Lead | int, actor) -> Lead:
    lead_id = lead if isinstance(lead, int) else lead.pk
    found = Lead.objects.filter(pk=lead_id).only("pk", "owner_id").first()
    if found is None:
        raise NotFound(f"No lead with id {lead_id}.")
    if not lead_can_edit(lead=found, actor=actor):
        raise Forbidden("Only marketers, admins and the sales rep who owns this lead may change it.")
    return found


@transaction.atomic
def lead_edit_profile(*, lead: Lead | int, actor, changes: dict[str, Any]) -> Lead:
    """A person edits the profile from the lead's page: who may is checked, then the profile
    service validates and stores (400 naming the field, 409 for a taken email)."""
    found = _lead_for(lead, actor)
    return lead_update_profile(lead=found.pk, changes=changes, actor=actor)


@transaction.atomic
def lead_log_activity(
    *,
    lead: Lead | int,
    actor,
    kind: str,
    text: str = "",
    outcome: str = "",
    duration_minutes: int | None = None,
    occurred_at: datetime | None = None,
) -> Interaction:
    """Log a note, a call or a meeting on the lead, by ``actor``. A note needs its text; a call
    may carry an outcome (one of ``CALL_OUTCOMES``) and a call or meeting a duration in minutes.
    Scored like any interaction (a rule on ``call`` with ``outcome`` equals ``connected``…)."""
    errors: dict[str, list[str]] = {}
    if kind not in SALES_ACTIVITY_TYPES:
        errors["kind"] = [f"Choose one of {', '.join(sorted(SALES_ACTIVITY_TYPES))}."]
    text = (text or "").replace("\x00", "").strip()
    if kind == InteractionType.NOTE and not text:
        errors["text"] = ["Write the note."]
    if len(text) > MAX_NOTE_LENGTH:
        errors["text"] = [f"At most {MAX_NOTE_LENGTH} characters."]
    outcome = (outcome or "").strip()
    if outcome and (kind != InteractionType.CALL or outcome not in CALL_OUTCOMES):
        errors["outcome"] = [f"A call's outcome is one of {', '.join(CALL_OUTCOMES)}."]
    if duration_minutes is not None and (
        kind == InteractionType.NOTE
        or isinstance(duration_minutes, bool)
        or not isinstance(duration_minutes, int)
        or not 0 < duration_minutes <= MAX_DURATION_MINUTES
    ):
        errors["duration_minutes"] = [f"A call or meeting lasts 1 to {MAX_DURATION_MINUTES} minutes."]
    if occurred_at is not None and occurred_at > timezone.now() + MAX_FUTURE_SKEW_FOR_PEOPLE:
        errors["occurred_at"] = ["Log what happened, not what is planned."]
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first][0]}", fields=errors)
    found = _lead_for(lead, actor)
    properties: dict[str, Any] = {"by": getattr(actor, "username", "")}
    if text:
        properties["text"] = text
    if outcome:
        properties["outcome"] = outcome
    if duration_minutes is not None:
        properties["minutes"] = duration_minutes
    interaction, _ = interaction_record(
        type=kind, lead=found.pk, occurred_at=occurred_at, properties=properties, source="dashboard"
    )
    return interaction

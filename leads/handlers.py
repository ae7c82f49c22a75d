"""Outbox handlers of the leads app: what a lead's events mean for notifications and webhooks.

DB-only and idempotent, like every outbox handler: they write a notification row or
webhook deliveries (deduplicated per happening) whose own tasks send them after commit.
Registered at start-up by ``LeadsConfig.ready``.
"""

from django.conf import settings

from leadfunnel.models import Notification
from leadfunnel.notifications import notification_create
from leadfunnel.outbox import outbox_handler
from leadfunnel.webhooks import webhook_queue

from .models import Lead

# The webhook event a move into a stage also emits (besides ``lead.stage_changed``).
STAGE_EVENTS = {
    "mql": "lead.mql",
    "pql": "lead.pql",
    "sal": "lead.sal_accepted",
    "sql": "lead.sql",
    "customer": "lead.customer",
    "lost": "lead.lost",
    "disqualified": "lead.disqualified",
}


def events_for_stage_change(from_stage: str, to_stage: str) -> list[str]:
    events = ["lead.stage_changed"]
    if to_stage == "recycled":
        events.append("lead.sal_rejected" if from_stage in ("mql", "pql") else "lead.recycled")
    elif to_stage in STAGE_EVENTS:
        events.append(STAGE_EVENTS[to_stage])
    return events


# --- notifications ---------------------------------------------------------------


@outbox_handler("lead.stage_changed")
def notify_rep_of_new_mql(payload: dict) -> None:
    """A new MQL/PQL was assigned to a rep: tell the rep, with the SLA deadline."""
    if payload.get("to") not in ("mql", "pql") or not payload.get("owner_id"):
        return
    lead = Lead.objects.filter(pk=payload["lead_id"]).select_related("owner").first()
    if lead is None or lead.owner_id != payload["owner_id"]:
        return  # moved on or reassigned since: the newer event notifies
    stage = payload["to"].upper()
    due = lead.sla_due_at.strftime("%Y-%m-%d %H:%M UTC") if lead.sla_due_at else "no deadline"
    notification_create(
        recipients=[lead.owner],
        kind=Notification.Kind.MQL_ASSIGNED,
        subject=f"New {stage} for you: {lead.full_name or lead.email}",
        body=(
            f"{lead.full_name or lead.email} ({lead.email}, {lead.title or 'no title'} at "
            f"{lead.company_name or 'unknown company'}) is a new {stage} assigned to you.\n"
            f"Please accept or reject before {due}.\n\n{settings.SITE_URL}/leads/{lead.pk}/\n"
        ),
        dedupe_key=f"mql_assigned:{payload.get('transition_id')}",
    )


# --- webhooks --------------------------------------------------------------------


@outbox_handler("lead.stage_changed")
def webhooks_on_stage_changed(payload: dict) -> None:
    webhook_queue(
        events=events_for_stage_change(payload.get("from", ""), payload.get("to", "")),
        data=payload,
        event_key=f"transition:{payload.get('transition_id')}",
    )


@outbox_handler("lead.created")
def webhooks_on_lead_created(payload: dict) -> None:
    webhook_queue(events=["lead.created"], data=payload, event_key=f"lead:{payload.get('lead_id')}")


@outbox_handler("lead.form_submitted")
def webhooks_on_form_submitted(payload: dict) -> None:
    webhook_queue(events=["lead.form_submitted"], data=payload, event_key=f"submission:{payload.get('submission_id')}")

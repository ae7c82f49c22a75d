"""Outbox handlers of the leads app: what a lead's events mean for notifications and webhooks,
and the funnel acting on scoring's decisions made outside a request.

DB-only and idempotent, like every outbox handler: they write a notification row or
webhook deliveries (deduplicated per happening) whose own tasks send them after commit.
Registered at start-up by ``LeadsConfig.ready``.
"""

from django.conf import settings
from django.db import transaction

from leadfunnel.kick import send_now
from leadfunnel.models import LeadAssignment, Notification
from leadfunnel.notifications import notification_create
from leadfunnel.outbox import outbox_handler
from leadfunnel.webhooks import webhook_queue_many

from .models import Lead, SalesRepProfile
from .services import leads_promote_qualified
from .services.consent import consent_requests_create

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


def _label(lead: Lead) -> str:
    return f"{lead.full_name or lead.email} ({lead.email})"


def _manager_of(user_id: int):
    profile = SalesRepProfile.objects.filter(user_id=user_id).select_related("manager").first()
    return profile.manager if profile else None


@outbox_handler("lead.assigned")
def notify_assigned_rep(payload: dict) -> None:
    lead = Lead.objects.filter(pk=payload["lead_id"]).select_related("owner").first()
    if lead is None or lead.owner_id != payload["owner_id"] or lead.owner is None:
        return  # moved on or reassigned since: the newer assignment notifies
    cause = payload["cause"]
    due = lead.sla_due_at.strftime("%Y-%m-%d %H:%M UTC") if lead.sla_due_at else "no deadline"
    link = f"{settings.SITE_URL}/leads/{lead.pk}/"
    if cause == "routing":
        stage = payload["stage"].upper()
        notification_create(
            recipients=[lead.owner],
            kind=Notification.Kind.MQL_ASSIGNED,
            subject=f"New {stage} for you: {lead.full_name or lead.email}",
            body=(
                f"{lead.full_name or lead.email} ({lead.email}, {lead.title or 'no title'} at "
                f"{lead.company_name or 'unknown company'}) is a new {stage} assigned to you.\n"
                f"Please accept or reject before {due}.\n\n{link}\n"
            ),
            dedupe_key=f"mql_assigned:{payload.get('transition_id')}",
        )
        return
    reason = payload.get("reason") or ""
    kind = Notification.Kind.SLA_REASSIGNED if cause == LeadAssignment.Cause.SLA else Notification.Kind.LEAD_ASSIGNED
    waiting = payload.get("sla_due_at") is not None and lead.stage in ("mql", "pql")
    notification_create(
        recipients=[lead.owner],
        kind=kind,
        subject=f"Lead {'reassigned' if payload.get('previous_owner_id') else 'assigned'} to you: {_label(lead)}",
        body=(
            f"{_label(lead)} was {'reassigned' if payload.get('previous_owner_id') else 'assigned'} to you. {reason}\n"
            + (f"Please accept or reject before {due}.\n" if waiting else "")
            + f"\n{link}\n"
        ),
        dedupe_key=f"assigned:{payload.get('assignment_id')}",
    )
    previous_id = payload.get("previous_owner_id")
    if previous_id and previous_id != lead.owner_id:
        previous = type(lead.owner).objects.filter(pk=previous_id).first()
        if previous is not None:
            notification_create(
                recipients=[previous, _manager_of(previous_id)] if cause == LeadAssignment.Cause.SLA else [previous],
                kind=kind,
                subject=f"Lead reassigned away: {_label(lead)}",
                body=(
                    f"{_label(lead)} was reassigned from {previous.get_username()} to "
                    f"{lead.owner.get_username()}. {reason}\n"
                ),
                dedupe_key=f"assigned_away:{payload.get('assignment_id')}",
            )


# --- webhooks --------------------------------------------------------------------


@outbox_handler("lead.stage_changed", many=True)
def webhooks_on_stage_changed(payloads: list[dict]) -> None:
    webhook_queue_many(
        items=[
            (events_for_stage_change(p.get("from", ""), p.get("to", "")), p, f"transition:{p.get('transition_id')}")
            for p in payloads
        ]
    )


@outbox_handler("lead.created", many=True)
def webhooks_on_lead_created(payloads: list[dict]) -> None:
    webhook_queue_many(items=[(["lead.created"], p, f"lead:{p.get('lead_id')}") for p in payloads])


@outbox_handler("lead.form_submitted", many=True)
def webhooks_on_form_submitted(payloads: list[dict]) -> None:
    webhook_queue_many(items=[(["lead.form_submitted"], p, f"submission:{p.get('submission_id')}") for p in payloads])


@outbox_handler("lead.erased", many=True)
def webhooks_on_lead_erased(payloads: list[dict]) -> None:
    """Tell integrations to forget the person too: the payload is the lead id only."""
    webhook_queue_many(items=[(["lead.erased"], {"lead_id": p["lead_id"]}, f"erased:{p['lead_id']}") for p in payloads])


# --- scoring's decisions ------------------------------------------------------------


@outbox_handler("scoring.recomputed")
def promote_after_recompute(payload: dict) -> None:
    """A full recompute finished: move the visitors that now qualify into MQL (reps, SLA)."""
    leads_promote_qualified(job_id=payload["job_id"])


# --- double opt-in -----------------------------------------------------------------


CONSENT_SEND_TASK = "leads.tasks.consent_requests_send"


@outbox_handler("lead.consent_requested", many=True)
def open_consent_requests(payloads: list[dict]) -> None:
    """A double opt-in form was submitted: one confirmation request per pending lead, its email
    sent by a worker once this transaction commits (or by the beat sweep if the kick is lost)."""
    ids = consent_requests_create(requests=[(p["lead_id"], p.get("form_id")) for p in payloads if p.get("lead_id")])
    if ids:
        transaction.on_commit(lambda: send_now(CONSENT_SEND_TASK, args=[ids]))

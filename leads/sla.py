"""Response SLA for leads waiting for sales (MQL/PQL): breach, notify, reassign; rep availability.

The beat task ``leads.tasks.sla_enforce`` calls :func:`sla_enforce` every minute:

1. **Breach**: a lead in MQL/PQL whose ``sla_due_at`` passed without a first response
   gets ``sla_breached_at``; its rep and the rep's manager get an email.
2. **Reassign**: ``SLA_REASSIGN_AFTER_HOURS`` after the breach, still unanswered, the
   lead goes to the next rep in the round-robin (never the same rep), with a fresh SLA
   deadline, through the one assignment rule (:func:`leads.services.leads_assign`: the
   ownership history, an audit event, the round-robin advanced; both reps are told).

Each lead's condition is re-checked on the locked row, so two sweeps (or a sweep racing a
rep's accept) never act twice.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Forbidden, NotFound, ValidationFailed
from leadfunnel.models import LeadAssignment, Notification
from leadfunnel.notifications import notification_create
from leadfunnel.roles import is_admin

from .funnel import AWAITING_SALES
from .models import Lead, SalesRepProfile
from .services import Reassignment, leads_assign
from .territories import company_sizes_clean, territories_clean

logger = logging.getLogger(__name__)

BATCH = 200


def _manager_of(user) -> object | None:
    if user is None:
        return None
    profile = SalesRepProfile.objects.filter(user=user).select_related("manager").first()
    return profile.manager if profile else None


def _lead_label(lead: Lead) -> str:
    return f"{lead.full_name or lead.email} ({lead.email})"


def sla_breach_mark(*, now: datetime | None = None) -> int:
    """Mark overdue MQL/PQL leads breached and queue the emails. Returns how many were marked."""
    now = now or timezone.now()
    marked = 0
    while True:
        with transaction.atomic():
            leads = list(
                Lead.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(
                    stage__in=list(AWAITING_SALES),
                    sla_due_at__lte=now,
                    first_response_at__isnull=True,
                    sla_breached_at__isnull=True,
                )
                .select_related("owner")
                .order_by("sla_due_at")[:BATCH]
            )
            if not leads:
                return marked
            Lead.objects.filter(pk__in=[lead.pk for lead in leads]).update(sla_breached_at=now, updated_at=now)
            managers = {
                profile.user_id: profile.manager
                for profile in SalesRepProfile.objects.filter(
                    user_id__in={lead.owner_id for lead in leads if lead.owner_id}
                ).select_related("manager")
            }
            for lead in leads:
                _notify_breach(lead, now=now, manager=managers.get(lead.owner_id))
            marked += len(leads)
        if len(leads) < BATCH:
            return marked


def _notify_breach(lead: Lead, *, now: datetime, manager=None) -> None:
    rep = lead.owner
    overdue = now - lead.sla_due_at
    reassign_at = now + timedelta(hours=settings.SLA_REASSIGN_AFTER_HOURS)
    body = (
        f"{_lead_label(lead)} has waited for a first response past its SLA deadline "
        f"({lead.sla_due_at:%Y-%m-%d %H:%M} UTC, {int(overdue.total_seconds() // 60)} min ago).\n"
        f"Rep: {rep.get_username() if rep else 'nobody'}.\n"
        f"Unless it is accepted or rejected, it is reassigned to the next rep around {reassign_at:%Y-%m-%d %H:%M} UTC.\n\n"
        f"{settings.SITE_URL}/leads/{lead.pk}/\n"
    )
    notification_create(
        recipients=[rep, manager],
        kind=Notification.Kind.SLA_BREACHED,
        subject=f"SLA breached: {_lead_label(lead)}",
        body=body,
        dedupe_key=f"sla_breached:{lead.pk}:{lead.cycle}:{lead.assigned_at.isoformat() if lead.assigned_at else ''}",
    )


def sla_reassign_overdue(*, now: datetime | None = None) -> int:
    """Reassign leads breached more than SLA_REASSIGN_AFTER_HOURS ago to the next rep in the
    round-robin (never the same rep). Returns how many moved."""
    now = now or timezone.now()
    hours = settings.SLA_REASSIGN_AFTER_HOURS
    cutoff = now - timedelta(hours=hours)
    candidates = list(
        Lead.objects.filter(stage__in=list(AWAITING_SALES), sla_breached_at__lte=cutoff, first_response_at__isnull=True)
        .order_by("sla_breached_at")
        .values_list("pk", "sla_breached_at")[:1000]
    )
    if not candidates:
        return 0

    def still_overdue(row: dict) -> bool:  # re-checked on the locked row: a rep may have answered
        breached = row["sla_breached_at"]
        return (
            row["stage"] in AWAITING_SALES
            and row["first_response_at"] is None
            and breached is not None
            and breached <= cutoff
        )

    moved = leads_assign(
        reassignments=[
            Reassignment(
                lead_id=lead_id,
                reason=f"No response within the SLA (breached {breached:%Y-%m-%d %H:%M} UTC); reassigned after {hours} h.",
            )
            for lead_id, breached in candidates
        ],
        cause=LeadAssignment.Cause.SLA,
        now=now,
        check=still_overdue,
    )
    if len(moved) < len(candidates):
        logger.warning("%d lead(s) breached the SLA but no other rep is available", len(candidates) - len(moved))
    return len(moved)


def sla_enforce(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    return {"breached": sla_breach_mark(now=now), "reassigned": sla_reassign_overdue(now=now)}


# --- rep availability ------------------------------------------------------------

REP_FIELDS = ("is_away", "capacity", "manager", "territories", "company_sizes")


def rep_profile_update(*, actor, user_id: int, changes: dict) -> SalesRepProfile:
    """Change a rep's routing facts (away, capacity, manager, territory rules). Admins may change
    all; a rep only their own ``is_away``."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.groups.filter(name="sales").exists():
        raise NotFound("No such sales rep.")
    unknown = set(changes) - set(REP_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if not is_admin(actor):
        if actor.pk != user.pk:
            raise Forbidden("Only admins may change another rep's availability.")
        if set(changes) - {"is_away"}:
            raise Forbidden("Reps may only change their own away status; ask an admin for capacity or manager.")
    if "manager" in changes and changes["manager"] is not None and changes["manager"].pk == user.pk:
        raise ValidationFailed("A rep cannot be their own manager.", fields={"manager": ["Choose someone else."]})
    if "territories" in changes:
        changes["territories"] = territories_clean(changes["territories"])
    if "company_sizes" in changes:
        changes["company_sizes"] = company_sizes_clean(changes["company_sizes"])
    with transaction.atomic():
        profile, _ = SalesRepProfile.objects.select_for_update().get_or_create(user=user)
        before = {f: getattr(profile, f"{f}_id" if f == "manager" else f) for f in changes}
        for field, value in changes.items():
            setattr(profile, field, value)
        profile.save(update_fields=list(changes) or None)
        after = {f: getattr(profile, f"{f}_id" if f == "manager" else f) for f in changes}
        audit_record(
            actor=actor,
            action="rep.updated",
            obj=profile,
            changes={f: [before[f], after[f]] for f in changes if before[f] != after[f]},
        )
    return profile

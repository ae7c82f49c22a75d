"""Lost → nurturing: an SQL whose deal was lost goes back to marketing ("recycled").

By its rep (or an admin), with a reason, at any time: :func:`lead_recycle`. Or by the
cooling-off rule: ``LOST_RECYCLE_AFTER_DAYS`` after the loss, every lead still lost is recycled
by :func:`leads_recycle_lost` (the beat task ``leads.tasks.lost_recycle``), set-based through the
one stage change. Either way the new history line keeps the loss: its ``reason`` says why the deal
was lost (and why it comes back), its ``reason_code`` is the loss's code and its ``details`` carry
the lost transition's reason, code, date and id. From recycled the lead can become an MQL again,
in a new cycle, like any rejected lead.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leadfunnel.errors import Forbidden, NotFound, ValidationFailed
from leadfunnel.roles import is_admin, is_sales

from ..models import Lead, LossReason, Stage, StageTransition, TransitionCause
from .funnel import IllegalTransition, StageChanges, StageMove, lead_change_stage, leads_change_stage

RECYCLE_BATCH = 500
RULE_REF = "rule:lost_recycle_after_days"


def _losses(lead_ids: list[int]) -> dict[int, StageTransition]:
    """Each lead's latest move into ``lost`` (one query, newest per lead)."""
    found: dict[int, StageTransition] = {}
    rows = StageTransition.objects.filter(lead_id__in=lead_ids, to_stage=Stage.LOST).order_by("lead_id", "-at", "-id")
    for row in rows.only("id", "lead_id", "at", "actor_id", "reason", "reason_code", "cycle"):
        found.setdefault(row.lead_id, row)
    return found


def _loss_words(loss: StageTransition | None) -> str:
    if loss is None:
        return "lost"
    label = LossReason(loss.reason_code).label if loss.reason_code in LossReason.values else ""
    words = ": ".join(part for part in (label, loss.reason) if part)
    return f"lost ({words})" if words else "lost"


def _loss_details(loss: StageTransition | None) -> dict:
    if loss is None:
        return {}
    return {
        "lost_transition": loss.pk,
        "lost_at": loss.at.isoformat(),
        "lost_reason_code": loss.reason_code,
        "lost_reason": loss.reason,
    }


def deal_reps(transitions, *, cycle: int) -> set[int]:
    """Who worked this cycle's deal, from the lead's history: the rep who owned it as an SQL and
    the one who closed it. The one rule for who may recycle it (the page shows the button by it)."""
    reps: set[int] = set()
    for t in transitions:
        if t.cycle == cycle and t.to_stage in (Stage.SQL, Stage.LOST):
            reps |= {pk for pk in (t.owner_id, t.actor_id) if pk is not None}
    return reps


def _reps_of(lead_id: int, cycle: int) -> set[int]:
    rows = StageTransition.objects.filter(lead_id=lead_id, cycle=cycle, to_stage__in=[Stage.SQL, Stage.LOST])
    return deal_reps(rows.only("cycle", "to_stage", "owner_id", "actor_id"), cycle=cycle)


@transaction.atomic
def lead_recycle(*, lead: Lead | int, actor, reason: str) -> Lead:
    """A lost lead goes back to marketing for nurturing, by the rep who worked the deal (or an
    admin), with a reason (400 without). 409 when the lead is not lost."""
    reason = (reason or "").replace("\x00", "").strip()
    if not reason:
        raise ValidationFailed(
            "reason: Say why the lead goes back to marketing.", fields={"reason": ["This field is required."]}
        )
    if len(reason) > 2000:
        raise ValidationFailed("reason: At most 2000 characters.", fields={"reason": ["Too long."]})
    lead_id = lead if isinstance(lead, int) else lead.pk
    locked = Lead.objects.select_for_update().filter(pk=lead_id).first()
    if locked is None:
        raise NotFound(f"No lead with id {lead_id}.")
    if locked.stage != Stage.LOST:
        raise IllegalTransition(
            f"Only a lost lead goes back to marketing this way; this one is {Stage(locked.stage).label}."
        )
    if not is_admin(actor) and not (is_sales(actor) and actor.pk in _reps_of(locked.pk, locked.cycle)):
        raise Forbidden("Only the sales rep who worked this deal, or an admin, may send it back to marketing.")
    loss = _losses([locked.pk]).get(locked.pk)
    lead_change_stage(
        lead=locked.pk,
        to_stage=Stage.RECYCLED,
        cause=TransitionCause.USER,
        actor=actor,
        cause_ref=f"user:{actor.username}",
        reason=f"Back to marketing after the deal was {_loss_words(loss)}. {reason}",
        reason_code=loss.reason_code if loss else "",
        details={**_loss_details(loss), "recycled_by": actor.pk, "note": reason},
        expected_from=(Stage.LOST,),
    )
    fresh = Lead.objects.select_related("owner", "company").get(pk=locked.pk)
    if isinstance(lead, Lead):
        for model_field in Lead._meta.concrete_fields:
            setattr(lead, model_field.attname, getattr(fresh, model_field.attname))
    return fresh


def lost_recycle_after_days() -> int:
    """``LOST_RECYCLE_AFTER_DAYS`` (0: the cooling-off rule is off)."""
    return int(getattr(settings, "LOST_RECYCLE_AFTER_DAYS", 0) or 0)


def leads_recycle_lost(*, now: datetime | None = None, after_days: int | None = None) -> int:
    """The cooling-off rule: every lead lost for at least ``after_days`` (default
    ``LOST_RECYCLE_AFTER_DAYS``; 0 = off) goes back to marketing, in batches of
    ``RECYCLE_BATCH``, each batch one set-based stage change (leads locked by another writer
    are left for the next run). Returns how many were recycled. Safe to run twice: a recycled
    lead is no longer lost.

    Queries per batch: the due leads (1), their losses (1), then the stage change's own.
    """
    days = lost_recycle_after_days() if after_days is None else after_days
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    done = 0
    skipped: set[int] = set()
    while True:
        with transaction.atomic():
            ids = list(
                Lead.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(stage=Stage.LOST, stage_changed_at__lte=cutoff)
                .exclude(Q(pk__in=skipped))
                .order_by("pk")
                .values_list("pk", flat=True)[:RECYCLE_BATCH]
            )
            if not ids:
                return done
            losses = _losses(ids)
            moves = [
                StageMove(
                    lead_id=lead_id,
                    to_stage=Stage.RECYCLED,
                    cause=TransitionCause.RULE,
                    cause_ref=RULE_REF,
                    reason=f"Back to marketing {days} days after the deal was {_loss_words(losses.get(lead_id))}.",
                    reason_code=losses[lead_id].reason_code if lead_id in losses else "",
                    details={**_loss_details(losses.get(lead_id)), "after_days": days},
                    expected_from=(Stage.LOST,),
                )
                for lead_id in ids
            ]
            changes: StageChanges = leads_change_stage(moves=moves, now=now)
            done += len(changes.transitions)
            skipped |= set(changes.skipped)

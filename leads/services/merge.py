"""Merging two leads that are the same person: the survivor keeps the fuller profile (field by
field, or as the marketer chose), gains every row of the duplicate, is rescored, and the
duplicate's email becomes a :class:`~leads.models.LeadAlias` that later intake resolves to the
survivor (``leads.services.funnel.emails_resolve_aliases``). The duplicate row is then deleted.

Apps above ``leads`` that keep rows of a lead with rules of their own (nurturing: one active
enrolment per sequence) register a hook with :func:`lead_merge_hook`; ``leads`` never imports
them. Every other table pointing at a lead is moved by one ``UPDATE`` per table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.db.models import ForeignKey, OneToOneField
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Conflict, NotFound, ValidationFailed
from scoring.models import LeadRuleTotal, PendingScore
from scoring.services import scores_recompute_lead

from .. import intake
from ..models import Lead, LeadAlias
from .qualification import leads_score

# Profile fields the marketer may choose between (``"survivor"`` or ``"duplicate"``), in page order:
# the fields a form fills, and the time zone.
MERGE_FIELDS: tuple[str, ...] = (*intake.PROFILE_FIELDS, "time_zone")
CHOICES = ("survivor", "duplicate")
# How far along the funnel a stage is: the survivor takes the duplicate's funnel position (stage,
# owner, SLA) when the duplicate is further along. The history lines that got it there move with
# it, so no stage entry is counted twice and none is lost.
STAGE_RANK = {"disqualified": -1, "visitor": 0, "recycled": 0, "lost": 0, "mql": 1, "pql": 1, "sal": 2, "sql": 3}
STAGE_RANK["customer"] = 4
FUNNEL_POSITION = (
    "stage",
    "stage_changed_at",
    "cycle",
    "owner_id",
    "assigned_at",
    "sla_due_at",
    "sla_breached_at",
    "sla_escalated_at",
    "first_response_at",
)
# First-touch attribution: the lead created first keeps it (blank values are filled from the other).
FIRST_TOUCH = ("source", "channel", "utm_source", "utm_medium", "utm_campaign", "first_page_url", "first_form_id")


class MergeHook(Protocol):
    def __call__(self, *, survivor_id: int, duplicate_id: int, now: datetime) -> dict[str, int]: ...


_hooks: list[MergeHook] = []


def lead_merge_hook(func: Callable[..., dict[str, int]]) -> Callable[..., dict[str, int]]:
    """Register ``func(survivor_id=, duplicate_id=, now=) -> {what: rows moved}``: called inside
    the merge's transaction, before the generic move, for an app to move its own rows its own
    way (nurturing ends a duplicate enrolment and moves enrolments and messages)."""
    if func not in _hooks:
        _hooks.append(func)
    return func


def fuller(survivor_value: Any, duplicate_value: Any) -> str:
    """Which side's value a merge keeps by default: a blank value loses; of two filled ones the
    longer (fuller) wins; a tie keeps the survivor's."""
    left, right = str(survivor_value or "").strip(), str(duplicate_value or "").strip()
    if not right or left == right:
        return "survivor"
    if not left or len(right) > len(left):
        return "duplicate"
    return "survivor"


@dataclass
class MergePreview:
    survivor: Lead
    duplicate: Lead
    rows: list[dict] = field(default_factory=list)  # {"field", "survivor", "duplicate", "default", "differs"}


def lead_merge_preview(*, survivor: Lead, duplicate: Lead) -> MergePreview:
    """Both profiles side by side with the side each field keeps by default (for the preview page)."""
    preview = MergePreview(survivor=survivor, duplicate=duplicate)
    for name in MERGE_FIELDS:
        left, right = getattr(survivor, name), getattr(duplicate, name)
        preview.rows.append(
            {
                "field": name,
                "label": Lead._meta.get_field(name).verbose_name.capitalize(),
                "survivor": left,
                "duplicate": right,
                "default": fuller(left, right),
                "differs": (left or "") != (right or ""),
            }
        )
    return preview


@dataclass
class MergeResult:
    survivor: Lead
    duplicate_id: int
    duplicate_email: str
    fields: dict[str, str]  # field → the side whose value was kept
    moved: dict[str, int]  # table → rows moved to the survivor


def _parse_choices(fields: Any) -> dict[str, str]:
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise ValidationFailed(
            'fields: Must be an object such as {"title": "duplicate"}.', fields={"fields": ["Must be an object."]}
        )
    errors: dict[str, list[str]] = {}
    for name, side in fields.items():
        if name not in MERGE_FIELDS:
            errors[f"fields.{name}"] = [f"Not a mergeable field; use one of {', '.join(MERGE_FIELDS)}."]
        elif side not in CHOICES:
            errors[f"fields.{name}"] = ['Must be "survivor" or "duplicate".']
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first][0]}", fields=errors)
    return dict(fields)


def _merged_profile(survivor: Lead, duplicate: Lead, choices: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """The survivor's column changes, and the side kept for each mergeable field."""
    changes: dict[str, Any] = {}
    kept: dict[str, str] = {}
    for name in MERGE_FIELDS:
        side = choices.get(name) or fuller(getattr(survivor, name), getattr(duplicate, name))
        kept[name] = side
        if side == "duplicate" and getattr(duplicate, name) != getattr(survivor, name):
            changes[name] = getattr(duplicate, name)
    if duplicate.company_id is not None and (survivor.company_id is None or kept["company_name"] == "duplicate"):
        changes["company_id"] = duplicate.company_id  # the company goes with the name kept
    custom = {**(duplicate.custom_fields or {}), **(survivor.custom_fields or {})}
    if custom != (survivor.custom_fields or {}):
        changes["custom_fields"] = custom
    tags = sorted(set(survivor.tags or []) | set(duplicate.tags or []))
    if tags != (survivor.tags or []):
        changes["tags"] = tags
    if duplicate.consent and not survivor.consent:
        changes.update(
            consent=True, consent_at=duplicate.consent_at, consent_source=duplicate.consent_source or "merge"
        )
    # An unsubscribe is the person's wish: the earlier one stands. (A bounce is the address's, and
    # the survivor's address did not bounce, so it is not carried over.)
    if duplicate.unsubscribed_at and (
        not survivor.unsubscribed_at or duplicate.unsubscribed_at < survivor.unsubscribed_at
    ):
        changes["unsubscribed_at"] = duplicate.unsubscribed_at
    if duplicate.last_activity_at and (
        not survivor.last_activity_at or duplicate.last_activity_at > survivor.last_activity_at
    ):
        changes["last_activity_at"] = duplicate.last_activity_at
    # The person became known when the first of the two records was made, with its first touch.
    if duplicate.created_at < survivor.created_at:
        changes["created_at"] = duplicate.created_at
        for name in FIRST_TOUCH:
            if getattr(duplicate, name):
                changes[name] = getattr(duplicate, name)
    else:
        for name in FIRST_TOUCH:
            if not getattr(survivor, name) and getattr(duplicate, name):
                changes[name] = getattr(duplicate, name)
    if STAGE_RANK.get(duplicate.stage, 0) > STAGE_RANK.get(survivor.stage, 0):
        changes.update({name: getattr(duplicate, name) for name in FUNNEL_POSITION})
    return changes, kept


def _lead_relations():
    """Every foreign key (or one-to-one) of another table to Lead, hidden ones included."""
    for relation in Lead._meta._get_fields(forward=False, reverse=True, include_hidden=True):
        if isinstance(relation.field, (ForeignKey, OneToOneField)) and relation.field.related_model is Lead:
            yield relation.related_model, relation.field


def _move_rows(*, survivor_id: int, duplicate_id: int) -> dict[str, int]:
    """One UPDATE per table pointing at the duplicate (what the hooks left). Scoring's per-rule
    totals are dropped instead: the rescore rebuilds them."""
    moved: dict[str, int] = {}
    LeadRuleTotal.objects.filter(lead_id=duplicate_id).delete()
    count = PendingScore.objects.filter(lead_id=duplicate_id).update(lead_id=survivor_id)
    if count:
        moved[PendingScore._meta.label_lower] = count
    for model, fk in _lead_relations():
        if model is LeadRuleTotal:
            continue
        try:
            with transaction.atomic():
                count = model._base_manager.filter(**{fk.attname: duplicate_id}).update(**{fk.attname: survivor_id})
        except IntegrityError:
            raise Conflict(
                f"The two leads cannot be merged: both have a {model._meta.verbose_name} that may exist only "
                "once per lead.",
                code="merge_conflict",
            ) from None
        if count:
            moved[model._meta.label_lower] = moved.get(model._meta.label_lower, 0) + count
    return moved


def _lock_pair(survivor_id: int, duplicate_id: int) -> tuple[Lead, Lead]:
    locked = {
        lead.pk: lead
        for lead in Lead.objects.select_for_update(of=("self",))
        .filter(pk__in=[survivor_id, duplicate_id])
        .order_by("pk")
    }
    if survivor_id not in locked:
        raise NotFound(f"No lead with id {survivor_id}.")
    if duplicate_id not in locked:
        raise ValidationFailed(
            f"duplicate: No lead with id {duplicate_id}.", fields={"duplicate": [f"No lead with id {duplicate_id}."]}
        )
    return locked[survivor_id], locked[duplicate_id]


def _clean_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValidationFailed(
            "duplicate: Give the id of the lead to merge into this one.",
            fields={"duplicate": ["Must be a lead id (a positive integer)."]},
        )
    return int(value)


@transaction.atomic
def lead_merge(*, survivor: Lead | int, duplicate: Any, fields: Any = None, actor=None) -> MergeResult:
    """Merge ``duplicate`` into ``survivor`` (both locked, in id order, for the whole transaction).

    The survivor keeps, per field of :data:`MERGE_FIELDS`, the side ``fields`` names, else the
    fuller value (:func:`fuller`); it gains the duplicate's company link when it has none, its
    custom fields and tags (union), consent, the earlier unsubscribe, the later activity and —
    when the duplicate was created first — its creation time and first touch; and its funnel
    position (stage, owner, SLA) when it is further along (:data:`STAGE_RANK`). Every row of the
    duplicate (interactions, submissions, opportunities, stage history, score contributions,
    assignments, aliases, and through hooks enrolments and messages) moves to the survivor; its
    score is rebuilt by the full-recompute path for one lead, then the funnel applies any
    qualification (the profile changed). The duplicate is deleted and its email becomes an alias.
    Audited as ``lead.merged``. 400 for a merge with itself, an unknown duplicate or a bad choice;
    409 when either lead was erased.
    """
    survivor_id = survivor if isinstance(survivor, int) else survivor.pk
    duplicate_id = _clean_id(duplicate)
    choices = _parse_choices(fields)
    if duplicate_id == survivor_id:
        raise ValidationFailed(
            "duplicate: A lead cannot be merged with itself.", fields={"duplicate": ["Choose another lead."]}
        )
    kept_lead, gone = _lock_pair(survivor_id, duplicate_id)
    if kept_lead.erased_at is not None or gone.erased_at is not None:
        raise Conflict("An erased lead's data is gone: it cannot be merged.", code="lead_erased")
    now = timezone.now()
    changes, kept = _merged_profile(kept_lead, gone, choices)

    moved: dict[str, int] = {}
    for hook in _hooks:
        for name, count in hook(survivor_id=survivor_id, duplicate_id=duplicate_id, now=now).items():
            if count:
                moved[name] = moved.get(name, 0) + count
    for name, count in _move_rows(survivor_id=survivor_id, duplicate_id=duplicate_id).items():
        moved[name] = moved.get(name, 0) + count

    duplicate_email = gone.email
    Lead.objects.filter(pk=duplicate_id).delete()
    LeadAlias.objects.create(
        email=duplicate_email,
        lead_id=survivor_id,
        merged_lead_id=duplicate_id,
        created_by=(actor if getattr(actor, "is_authenticated", False) else None),
    )
    Lead.objects.filter(pk=survivor_id).update(**changes, updated_at=now)

    scores_recompute_lead(lead_id=survivor_id, now=now)
    merged = Lead.objects.get(pk=survivor_id)
    leads_score(profile_lead_ids={survivor_id}, caller_leads={survivor_id: merged})
    audit_record(
        actor=actor,
        action="lead.merged",
        object_type=Lead._meta.label_lower,
        object_id=str(survivor_id),
        changes={
            "duplicate": {"id": duplicate_id, "email": duplicate_email},
            "fields": kept,
            "changed": sorted(changes),
            "moved": moved,
        },
    )
    if not isinstance(survivor, int):
        survivor.refresh_from_db()
    return MergeResult(
        survivor=merged, duplicate_id=duplicate_id, duplicate_email=duplicate_email, fields=kept, moved=moved
    )

"""Enrolling leads (by hand, by trigger, by segment), exits and goals.

At most one active enrolment per lead and sequence is guaranteed by a partial
unique index; inserts use ON CONFLICT DO NOTHING, so a duplicate event or two
handlers racing enrol a lead once. Re-enrolment follows the sequence's policy.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from leadfunnel.errors import Conflict, ValidationFailed
from leadfunnel.outbox import outbox_publish_many
from leads.models import Interaction, Lead, Segment, Stage
from leads.selectors import segment_leads

from ..conditions import LEAD_FIELDS, condition_kind, interaction_matches
from ..models import Enrollment, EnrollmentStatus, ExitReason, Sequence
from .statements import _enrollments_analyze, _leads_tagged

# Entering one of these hands the lead to sales; sequences with stop_on_handoff let go.
HANDOFF_STAGES = frozenset({Stage.MQL, Stage.PQL, Stage.SAL, Stage.SQL, Stage.CUSTOMER})
BULK_LIMIT = 50_000
# A bulk enrolment at least this large refreshes the planner statistics of the enrolment table
# (PostgreSQL), so the executor's claim walks the due index instead of sorting every due row.
ANALYZE_AFTER = 1_000


def _blocked_by_policy(sequence: Sequence) -> Q:
    """Enrolments of a lead in this sequence that forbid a new one."""
    if sequence.reenroll == Sequence.Reenroll.NEVER:
        return Q()
    if sequence.reenroll == Sequence.Reenroll.AFTER_EXIT:
        return Q(status__in=[EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED])
    return Q(status=EnrollmentStatus.ACTIVE)


def eligible_leads(sequence: Sequence, leads: QuerySet) -> QuerySet:
    """Leads that may be enrolled now: reachable, not disqualified, allowed by the policy."""
    blocking = Enrollment.objects.filter(_blocked_by_policy(sequence), sequence=sequence, lead=OuterRef("pk"))
    return leads.filter(unsubscribed_at__isnull=True, email_bounced_at__isnull=True, erased_at__isnull=True).exclude(
        Q(stage=Stage.DISQUALIFIED) | Q(Exists(blocking))
    )


def enrollments_create(
    *, sequence: Sequence, lead_ids: Iterable[int], source: str = "manual", actor=None, now=None
) -> list[int]:
    """Enrol the eligible leads among ``lead_ids``; return the ids of the leads enrolled."""
    now = now or timezone.now()
    lead_ids = list(dict.fromkeys(lead_ids))
    if not lead_ids or not sequence.active:
        return []
    candidates = list(eligible_leads(sequence, Lead.objects.filter(pk__in=lead_ids)).values_list("pk", flat=True))
    if not candidates:
        return []
    rows = [
        Enrollment(
            lead_id=lead_id,
            sequence=sequence,
            current_step=1,
            next_due_at=now,
            enrolled_at=now,
            source=source[:120],
            enrolled_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        for lead_id in candidates
    ]
    Enrollment.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    # ON CONFLICT DO NOTHING hides which rows went in; the ones stamped `now` by this call did.
    enrolled = list(
        Enrollment.objects.filter(
            sequence=sequence, lead_id__in=candidates, status=EnrollmentStatus.ACTIVE, enrolled_at=now
        ).values_list("lead_id", flat=True)
    )
    if len(enrolled) >= ANALYZE_AFTER:
        # After commit: ANALYZE then sees the committed rows and holds no lock in this transaction.
        transaction.on_commit(_enrollments_analyze)
    return enrolled


def enrollment_create(*, sequence: Sequence, lead: Lead, source: str = "manual", actor=None) -> Enrollment:
    """Enrol one lead by hand; explain with a 409 why not when it is not possible."""
    if not sequence.active:
        raise Conflict("This sequence is not active; activate it before enrolling leads.", code="sequence_inactive")
    if lead.erased_at is not None:
        raise Conflict("This lead's data was erased; it is not nurtured.", code="lead_not_eligible")
    if lead.stage == Stage.DISQUALIFIED:
        raise Conflict("This lead is disqualified and is not nurtured.", code="lead_not_eligible")
    if lead.unsubscribed_at or lead.email_bounced_at:
        why = "unsubscribed" if lead.unsubscribed_at else "had an email bounce"
        raise Conflict(f"This lead {why} and cannot be enrolled.", code="lead_not_eligible")
    existing = Enrollment.objects.filter(sequence=sequence, lead=lead)
    if existing.filter(status=EnrollmentStatus.ACTIVE).exists():
        raise Conflict("This lead is already in this sequence.", code="already_enrolled")
    if existing.filter(_blocked_by_policy(sequence)).exists():
        raise Conflict(
            f"This lead was in this sequence before and its re-enrolment policy is {sequence.reenroll!r}.",
            code="reenrollment_not_allowed",
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            return Enrollment.objects.create(
                lead=lead,
                sequence=sequence,
                current_step=1,
                next_due_at=now,
                enrolled_at=now,
                source=source,
                enrolled_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
    except IntegrityError:
        raise Conflict("This lead is already in this sequence.", code="already_enrolled") from None


SEGMENT_FILTER_KEYS = ("stage", "min_score", "max_score", "source", "owner", "fields")


def leads_matching(spec: dict) -> QuerySet:
    """Leads matching a segment trigger: a saved segment (``{"segment": id}``, compiled by the leads
    app into one query), or the older inline filter (stage, score range, source, field values)."""
    if spec.get("segment") is not None:
        segment = Segment.objects.filter(pk=spec["segment"]).first()
        # A deleted segment enrols nobody (the sequence's editor asks for another one).
        return segment_leads(segment=segment) if segment is not None else Lead.objects.none()
    unknown = set(spec) - {*SEGMENT_FILTER_KEYS, "kind"}
    if unknown:
        raise ValidationFailed(f"Unknown filter key(s): {', '.join(sorted(unknown))}.")
    leads = Lead.objects.all()
    if spec.get("stage"):
        leads = leads.filter(stage=spec["stage"])
    if spec.get("min_score") is not None:
        leads = leads.filter(score__gte=spec["min_score"])
    if spec.get("max_score") is not None:
        leads = leads.filter(score__lte=spec["max_score"])
    if spec.get("source"):
        leads = leads.filter(source=spec["source"])
    if spec.get("owner"):
        leads = leads.filter(owner_id=spec["owner"])
    for name, value in (spec.get("fields") or {}).items():
        if name.startswith("custom_fields."):
            leads = leads.filter(**{f"custom_fields__{name.split('.', 1)[1]}": value})
        elif name == "tags":
            leads = _leads_tagged(leads, value)
        elif name in LEAD_FIELDS:
            leads = leads.filter(**{f"{name}__iexact" if isinstance(value, str) else name: value})
        else:
            raise ValidationFailed(f"Unknown lead field {name!r}.")
    return leads


def segments_enroll(*, now=None) -> int:
    """Periodic: enrol leads matching each active segment sequence. Safe to run twice."""
    now = now or timezone.now()
    total = 0
    for sequence in Sequence.objects.filter(active=True, enroll_on__kind="segment"):
        matching = eligible_leads(sequence, leads_matching(sequence.enroll_on)).order_by("pk")
        last_id = 0
        while True:
            chunk = list(matching.filter(pk__gt=last_id).values_list("pk", flat=True)[:5000])
            if not chunk:
                break
            last_id = chunk[-1]
            total += len(enrollments_create(sequence=sequence, lead_ids=chunk, source="segment", now=now))
    return total


def enroll_on_form(*, lead_id: int, form_slug: str) -> int:
    return enroll_on_forms(lead_ids_by_form={form_slug: [lead_id]})


def enroll_on_forms(*, lead_ids_by_form: dict[str, list[int]]) -> int:
    """Enrol leads who submitted forms into the sequences those forms (or any form) start: the
    sequences read once, one set-based enrolment per sequence and form."""
    sequences = list(Sequence.objects.filter(active=True, enroll_on__kind="form_submitted"))
    enrolled = 0
    for sequence in sequences:
        slug = (sequence.enroll_on or {}).get("form")
        for form_slug, lead_ids in lead_ids_by_form.items():
            if slug in (None, "", form_slug):
                enrolled += len(enrollments_create(sequence=sequence, lead_ids=lead_ids, source=f"form:{form_slug}"))
    return enrolled


def enroll_on_stage(*, lead_id: int, stage: str) -> int:
    sequences = Sequence.objects.filter(active=True, enroll_on__kind="stage_entered", enroll_on__stage=stage)
    return sum(len(enrollments_create(sequence=s, lead_ids=[lead_id], source=f"stage:{stage}")) for s in sequences)


def enrollments_exit(
    *, lead_ids: Iterable[int], reason: str, handoff_stage: str | None = None, sequence_id: int | None = None, now=None
) -> int:
    """End the active enrolments of these leads. For a handoff, only sequences that stop on handoff
    (and not the one the lead was enrolled into for entering this very stage)."""
    now = now or timezone.now()
    active = Enrollment.objects.filter(lead_id__in=list(lead_ids), status=EnrollmentStatus.ACTIVE)
    if sequence_id is not None:
        active = active.filter(sequence_id=sequence_id)
    if handoff_stage is not None:
        # A positive filter on the JSON keys (an exclude would drop sequences without those keys:
        # NULL comparisons), and no jsonb containment so the embedded SQLite default works too.
        entered_here = Sequence.objects.filter(
            enroll_on__kind="stage_entered", enroll_on__stage=handoff_stage
        ).values_list("pk", flat=True)
        active = active.filter(sequence__stop_on_handoff=True).exclude(sequence_id__in=list(entered_here))
    return active.update(
        status=EnrollmentStatus.EXITED, exit_reason=reason, exited_at=now, next_due_at=None, claim_token=""
    )


def _goal_reach(enrollments: list[tuple[Enrollment, int, dict]], *, now) -> int:
    reached = 0
    messages = []
    for enrollment, index, goal in enrollments:
        updated = Enrollment.objects.filter(pk=enrollment.pk, status=EnrollmentStatus.ACTIVE).update(
            status=EnrollmentStatus.GOAL_REACHED,
            exit_reason=ExitReason.GOAL,
            goal={"index": index, **goal},
            exited_at=now,
            next_due_at=None,
        )
        if updated:
            reached += 1
            messages.append(
                (
                    "sequence.goal_reached",
                    {
                        "enrollment_id": enrollment.pk,
                        "sequence_id": enrollment.sequence_id,
                        "lead_id": enrollment.lead_id,
                        "goal": goal,
                    },
                )
            )
    outbox_publish_many(messages=messages)
    return reached


def goals_check_stage(*, lead_id: int, stage: str, now=None) -> int:
    """Stage goals ("became MQL"): checked when the lead enters a stage."""
    now = now or timezone.now()
    hits = []
    for enrollment in Enrollment.objects.filter(lead_id=lead_id, status=EnrollmentStatus.ACTIVE).select_related(
        "sequence"
    ):
        for index, goal in enumerate(enrollment.sequence.goals or [], start=1):
            if condition_kind(goal) == "stage" and goal["stage"] == stage:
                hits.append((enrollment, index, goal))
                break
    return _goal_reach(hits, now=now)


def goals_check_interactions(*, lead_ids: list[int], types: list[str], now=None) -> int:
    """Interaction goals: did the lead do X since enrolling? Set-based over the leads of one event."""
    now = now or timezone.now()
    enrollments = [
        e
        for e in Enrollment.objects.filter(lead_id__in=lead_ids, status=EnrollmentStatus.ACTIVE)
        .exclude(sequence__goals=[])
        .select_related("sequence")
        if any(condition_kind(g) == "interaction" and g["interaction_type"] in types for g in e.sequence.goals or [])
    ]
    if not enrollments:
        return 0
    wanted_types = {
        g["interaction_type"] for e in enrollments for g in e.sequence.goals if condition_kind(g) == "interaction"
    } & set(types)
    since = min(e.enrolled_at for e in enrollments)
    by_lead: dict[int, list[tuple]] = defaultdict(list)
    for row in Interaction.objects.filter(
        lead_id__in={e.lead_id for e in enrollments}, type__in=wanted_types, occurred_at__gte=since
    ).values_list("lead_id", "type", "properties", "occurred_at"):
        by_lead[row[0]].append(row[1:])
    hits = []
    for enrollment in enrollments:
        for index, goal in enumerate(enrollment.sequence.goals, start=1):
            if condition_kind(goal) != "interaction":
                continue
            if any(
                at >= enrollment.enrolled_at and interaction_matches(goal, itype, props)
                for itype, props, at in by_lead[enrollment.lead_id]
            ):
                hits.append((enrollment, index, goal))
                break
    return _goal_reach(hits, now=now)

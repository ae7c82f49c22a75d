"""Nurturing reads: sequences with their steps, enrolments, per-step stats, previews, pickers."""

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.fields.json import KT

from leadfunnel.errors import NotFound, ValidationFailed
from leads.models import Lead, StageTransition

from .abtest import VARIANTS, ab_is_test, ab_settings
from .models import (
    MESSAGE_KINDS,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    Message,
    Sequence,
    Step,
    StepExecution,
    StepKind,
)
from .rendering import merge_context, render_email, render_sms, render_subject
from .tracking import tracking_url

CONVERSION_STAGES = ("mql", "sql", "customer")


def sequence_list() -> QuerySet:
    return Sequence.objects.prefetch_related(Prefetch("steps", queryset=Step.objects.order_by("position")))


def sequence_get(*, sequence_id: int) -> Sequence:
    sequence = sequence_list().filter(pk=sequence_id).first()
    if sequence is None:
        raise NotFound("No sequence with this id.")
    return sequence


def enrollment_list(*, sequence: Sequence, status: str | None = None) -> QuerySet:
    enrollments = Enrollment.objects.filter(sequence=sequence).select_related("lead").order_by("-enrolled_at", "-pk")
    if status:
        if status not in EnrollmentStatus.values:
            raise ValidationFailed(f"Unknown status {status!r}; use one of {', '.join(EnrollmentStatus.values)}.")
        enrollments = enrollments.filter(status=status)
    return enrollments


def email_template_list() -> QuerySet:
    return EmailTemplate.objects.order_by("name", "pk")


def email_template_get(*, template_id: int) -> EmailTemplate:
    template = EmailTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound("No email template with this id.")
    return template


def email_template_choices(*, limit: int = 200) -> list[dict]:
    """Templates for the step editor's picker: id, name, subject and body (one query)."""
    return list(email_template_list().values("id", "name", "subject", "body")[:limit])


def sequence_choices() -> list[tuple[int, str]]:
    """Active sequences for the enrol pickers (id, name), one query without the steps."""
    return list(Sequence.objects.filter(active=True).order_by("name").values_list("id", "name")[:200])


def assign_owner_choices(*, include_ids: set[int] = frozenset(), limit: int = 200) -> list[tuple[int, str]]:
    """Whom an "assign" action step may name (id, label), one query: the active sales reps, and any
    user a step on the page already names (marked when they are not an active rep, so the editor
    shows the step as it is and saving it gives the API's answer)."""
    users = (
        get_user_model()
        .objects.filter(Q(groups__name="sales", is_active=True) | Q(pk__in=include_ids))
        .annotate(rep=Count("groups", filter=Q(groups__name="sales")))
        .order_by("username")
        .values_list("id", "username", "is_active", "rep")[:limit]
    )
    choices = []
    for user_id, username, is_active, rep in users:
        label = username if is_active and rep else f"{username} ({'not a sales rep' if is_active else 'inactive'})"
        choices.append((user_id, label))
    known = {user_id for user_id, _ in choices}
    choices += [(user_id, f"user #{user_id} (no longer exists)") for user_id in sorted(include_ids - known)]
    return choices


def enrollments_for_lead(*, lead_id: int, limit: int = 20) -> list[Enrollment]:
    """A lead's latest enrolments with their sequence, newest first (one query)."""
    return list(
        Enrollment.objects.filter(lead_id=lead_id).select_related("sequence").order_by("-enrolled_at", "-pk")[:limit]
    )


def sequence_list_stats(*, sequence_ids: list[int]) -> dict[int, dict]:
    """Enrolment counts by status and message engagement per sequence: two aggregate queries."""
    if not sequence_ids:
        return {}
    stats: dict[int, dict] = {
        pk: {
            "enrolled": 0,
            "active": 0,
            "completed": 0,
            "goal_reached": 0,
            "exited": 0,
            "sent": 0,
            "opened": 0,
            "clicked": 0,
        }
        for pk in sequence_ids
    }
    for row in (
        Enrollment.objects.filter(sequence_id__in=sequence_ids).values("sequence_id", "status").annotate(n=Count("pk"))
    ):
        entry = stats[row["sequence_id"]]
        entry["enrolled"] += row["n"]
        entry[row["status"]] = entry.get(row["status"], 0) + row["n"]
    for row in (
        Message.objects.filter(sequence_id__in=sequence_ids, purpose=Message.Purpose.NURTURE)
        .values("sequence_id")
        .annotate(sent=Count("sent_at"), opened=Count("opened_at"), clicked=Count("clicked_at"))
    ):
        stats[row["sequence_id"]].update(sent=row["sent"], opened=row["opened"], clicked=row["clicked"])
    for entry in stats.values():
        entry["open_rate"] = entry["opened"] / entry["sent"] if entry["sent"] else None
        entry["click_rate"] = entry["clicked"] / entry["sent"] if entry["sent"] else None
        entry["goal_rate"] = entry["goal_reached"] / entry["enrolled"] if entry["enrolled"] else None
    return stats


def sequence_stats(*, sequence: Sequence) -> dict:
    """Counts per sequence and per step, from enrolments, executions, messages and the stage history.

    Five aggregate queries whatever the number of enrolments.
    """
    # 1: where enrolments are (or ended): by step, status and exit reason.
    by_position: dict[int, dict] = defaultdict(lambda: {"active": 0, "goal_reached": 0, "exited": defaultdict(int)})
    totals = {"enrolled": 0, "active": 0, "completed": 0, "goal_reached": 0, "exited": 0}
    exited_by_reason: dict[str, int] = defaultdict(int)
    for row in (
        Enrollment.objects.filter(sequence=sequence)
        .values("current_step", "status", "exit_reason")
        .annotate(n=Count("pk"))
    ):
        n, status, position = row["n"], row["status"], row["current_step"]
        totals["enrolled"] += n
        totals[status] += n
        if status == EnrollmentStatus.ACTIVE:
            by_position[position]["active"] += n
        elif status == EnrollmentStatus.GOAL_REACHED:
            by_position[position]["goal_reached"] += n
        elif status == EnrollmentStatus.EXITED:
            exited_by_reason[row["exit_reason"]] += n
            by_position[position]["exited"][row["exit_reason"]] += n
    # 2: who went on to become MQL / SQL / customer after enrolling.
    became = Enrollment.objects.filter(sequence=sequence).aggregate(
        **{
            stage: Count(
                "pk",
                filter=Q(
                    Exists(
                        StageTransition.objects.filter(
                            lead=OuterRef("lead"), to_stage=stage, at__gte=OuterRef("enrolled_at")
                        )
                    )
                ),
            )
            for stage in CONVERSION_STAGES
        }
    )
    # 3: executions by step and state (and, for skipped steps, why: no consent, suppressed…).
    executions: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    skipped_why: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        StepExecution.objects.filter(sequence=sequence)
        .values("position", "state", reason=KT("detail__reason"))
        .annotate(n=Count("pk"))
    ):
        executions[row["position"]][row["state"]] += row["n"]
        if row["state"] == "skipped":
            skipped_why[row["position"]][row["reason"] or "other"] += row["n"]
    # 4: message engagement by step (and by subject variant, for A/B-tested steps).
    engagement: dict[int, dict[str, int]] = defaultdict(lambda: {"sent": 0, "opened": 0, "clicked": 0})
    by_variant: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in (
        Message.objects.filter(sequence=sequence, purpose=Message.Purpose.NURTURE)
        .values("position", "variant")
        .annotate(sent=Count("sent_at"), opened=Count("opened_at"), clicked=Count("clicked_at"))
    ):
        for key in ("sent", "opened", "clicked"):
            engagement[row["position"]][key] += row[key]
        if row["variant"]:
            by_variant[row["position"]][row["variant"]] = row
    # 5: the steps themselves (prefetched in position order by sequence_get: no query then).
    steps = []
    for step in sequence.steps.all():
        states = executions.get(step.position, {})
        messages = engagement.get(step.position, {})
        sent = messages.get("sent", 0)
        where = by_position.get(step.position, {"active": 0, "goal_reached": 0, "exited": {}})
        steps.append(
            {
                "position": step.position,
                "kind": step.kind,
                "executed": sum(states.values()),
                "sent": sent if step.kind in MESSAGE_KINDS else states.get("sent", 0),
                "failed": states.get("failed", 0),
                "pending": states.get("pending", 0) + states.get("sending", 0),
                "skipped": states.get("skipped", 0),
                "skipped_by_reason": dict(skipped_why.get(step.position, {})),
                "opened": messages.get("opened", 0),
                "clicked": messages.get("clicked", 0),
                "open_rate": round(messages.get("opened", 0) / sent, 4) if sent else None,
                "click_rate": round(messages.get("clicked", 0) / sent, 4) if sent else None,
                "active": where["active"],
                "goal_reached": where["goal_reached"],
                "exited": dict(where["exited"]),
                "ab": _ab_stats(step, by_variant.get(step.position, {})),
            }
        )
    return {
        "sequence": sequence.pk,
        **totals,
        "exited_by_reason": dict(exited_by_reason),
        "became": became,
        "sent": sum(s["sent"] for s in steps if s["kind"] in MESSAGE_KINDS),
        "opened": sum(s["opened"] for s in steps),
        "clicked": sum(s["clicked"] for s in steps),
        "skipped": sum(s["skipped"] for s in steps if s["kind"] in MESSAGE_KINDS),
        "skipped_by_reason": _sum_reasons(s["skipped_by_reason"] for s in steps if s["kind"] in MESSAGE_KINDS),
        "steps": steps,
    }


def _sum_reasons(parts) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for part in parts:
        for reason, n in part.items():
            total[reason] += n
    return dict(total)


def _ab_stats(step: Step, rows: dict[str, dict]) -> dict | None:
    """Per-variant sends, opens, clicks and click rate of an A/B-tested email step, and the winner."""
    if not ab_is_test(step) and not rows:
        return None
    split, size, wait_hours = ab_settings(step.config)
    variants = {}
    for variant in VARIANTS:
        row = rows.get(variant, {})
        sent = row.get("sent", 0)
        variants[variant] = {
            "subject": step.config.get("subject_b" if variant == "b" else "subject", ""),
            "sent": sent,
            "opened": row.get("opened", 0),
            "clicked": row.get("clicked", 0),
            "open_rate": round(row.get("opened", 0) / sent, 4) if sent else None,
            "click_rate": round(row.get("clicked", 0) / sent, 4) if sent else None,
        }
    return {
        "split": split,
        "test_size": size,
        "wait_hours": wait_hours,
        "winner": step.ab_winner or None,
        "decided_at": step.ab_decided_at,
        "variants": variants,
    }


def sequence_preview(*, sequence: Sequence, lead_id: int | None, position: int | None) -> dict:
    """Render a message step for a sample lead, with the tracking links it would carry."""
    steps = [s for s in sequence.steps.all() if s.kind in MESSAGE_KINDS]
    if position is not None:
        steps = [s for s in steps if s.position == position]
    if not steps:
        raise ValidationFailed("This sequence has no email or SMS step to preview at that position.")
    step = steps[0]
    leads = Lead.objects.select_related("company", "owner")
    lead = leads.filter(pk=lead_id).first() if lead_id is not None else leads.order_by("pk").first()
    if lead is None:
        raise NotFound("No lead with this id." if lead_id is not None else "There is no lead to preview with.")
    context = merge_context(lead)
    if step.kind == StepKind.SMS:
        return {
            "step": step.position,
            "kind": step.kind,
            "lead": lead.pk,
            "to": lead.phone,
            "subject": "",
            "subject_b": "",
            "html": "",
            "text": render_sms(body=step.config["body"], context=context),
            "links": [],
        }
    token = "preview"  # noqa: S105 - a placeholder message token, not a secret
    rendered = render_email(
        subject=step.config["subject"],
        body=step.config["body"],
        context=context,
        click_url=lambda index: tracking_url(token, "c", index),
        open_url=tracking_url(token, "o"),
        unsubscribe_url=tracking_url(token, "u"),
    )
    subject_b = ""
    if ab_is_test(step):
        subject_b = render_subject(subject=step.config["subject_b"], context=context)
    return {
        "step": step.position,
        "kind": step.kind,
        "lead": lead.pk,
        "to": lead.email,
        "subject": rendered.subject,
        "subject_b": subject_b,
        "html": rendered.html,
        "text": rendered.text,
        "links": rendered.links,
    }

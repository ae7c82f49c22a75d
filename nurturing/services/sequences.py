"""Writing sequences: validation of the whole shape (templates, branches, actions) and CRUD.

A sequence is saved whole or not at all: every problem is reported with the
step it is in (``errors = {"steps": {"3": ["…"]}}``) and nothing is stored.
"""

import re
from datetime import time

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Conflict, ValidationFailed
from leads.models import Form, Segment

from ..conditions import STAGES, ConditionError, condition_validate
from ..models import Enrollment, EnrollmentStatus, Sequence, Step, StepKind
from ..rendering import TemplateError, template_validate

ENROLL_KINDS = ("manual", "form_submitted", "stage_entered", "segment")
WAIT_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
ACTIONS = ("set_stage", "notify_owner", "assign", "tag", "webhook")
MAX_STEPS = 100
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

# The longest wait step: its due date must stay a timestamp the database stores.
MAX_WAIT_SECONDS = 10 * 365 * 86400


def _step_errors(step: dict, position: int, count: int) -> list[str]:
    errors: list[str] = []
    kind = step.get("kind")
    if kind not in StepKind.values:
        return [f"Unknown step kind {kind!r}; use one of {', '.join(StepKind.values)}."]
    if kind == StepKind.EMAIL:
        for field, is_html in (("subject", False), ("body", True)):
            value = step.get(field)
            if not isinstance(value, str) or not value.strip():
                errors.append(f"An email step needs a {field}.")
                continue
            try:
                template_validate(value, is_html=is_html)
            except TemplateError as exc:
                errors.append(f"{field}: {exc}")
        if isinstance(step.get("subject"), str) and len(step["subject"]) > 300:
            errors.append("subject: at most 300 characters.")
        errors += _ab_errors(step)
    elif kind == StepKind.SMS:
        value = step.get("body")
        if not isinstance(value, str) or not value.strip():
            errors.append("An SMS step needs a body.")
        else:
            try:
                template_validate(value, is_html=False)
            except TemplateError as exc:
                errors.append(f"body: {exc}")
    elif kind == StepKind.WAIT:
        units = [unit for unit in WAIT_UNITS if unit in step]
        until = step.get("until")
        if until is not None:
            if units:
                errors.append("A wait step takes either a duration or 'until', not both.")
            elif not isinstance(until, dict):
                errors.append('\'until\' must be an object like {"weekdays": [0, 1, 2, 3, 4], "time": "09:00"}.')
            else:
                weekdays = until.get("weekdays", [])
                if not isinstance(weekdays, list) or any(d not in range(7) for d in weekdays):
                    errors.append("'until.weekdays' must be a list of 0 (Monday) … 6 (Sunday).")
                if not isinstance(until.get("time", "00:00"), str) or not _TIME.match(until.get("time", "00:00")):
                    errors.append("'until.time' must be HH:MM.")
        elif len(units) != 1:
            errors.append("A wait step needs exactly one of minutes, hours or days (or 'until').")
        else:
            amount = step[units[0]]
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
                errors.append(f"'{units[0]}' must be a positive number.")
            elif amount * WAIT_UNITS[units[0]] > MAX_WAIT_SECONDS:
                # A due date must stay a storable timestamp (and a real plan): ten years at most.
                limit = MAX_WAIT_SECONDS // WAIT_UNITS[units[0]]
                errors.append(f"'{units[0]}' must be at most {limit} (ten years).")
    elif kind == StepKind.BRANCH:
        try:
            condition_validate(step.get("condition"))
        except ConditionError as exc:
            errors.append(f"condition: {exc}")
        for key in ("goto", "else_goto"):
            if key not in step and key == "else_goto":
                continue
            target = step.get(key)
            if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= count:
                errors.append(f"'{key}' must be the position of a step (1 … {count}).")
            elif target == position:
                errors.append(f"'{key}' cannot point at the branch itself.")
    elif kind == StepKind.ACTION:
        action = step.get("action")
        if action not in ACTIONS:
            errors.append(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.")
        elif action == "set_stage" and step.get("stage") not in STAGES:
            errors.append(f"set_stage needs a 'stage' among {', '.join(sorted(STAGES))}.")
        elif action == "assign":
            owner = step.get("owner", "round_robin")
            if owner != "round_robin" and not (
                isinstance(owner, int) and get_user_model().objects.filter(pk=owner, is_active=True).exists()
            ):
                errors.append("assign needs 'owner': an active user's id, or \"round_robin\".")
        elif action == "tag":
            add, remove = step.get("add", []), step.get("remove", [])
            if not (add or remove) or not all(isinstance(t, str) and t.strip() for t in [*add, *remove]):
                errors.append("tag needs 'add' and/or 'remove': lists of tag names.")
        elif action == "notify_owner":
            for field in ("subject", "body"):
                if field in step:
                    try:
                        template_validate(str(step[field]), is_html=False)
                    except TemplateError as exc:
                        errors.append(f"{field}: {exc}")
        elif action == "webhook" and "event" in step and not isinstance(step["event"], str):
            errors.append("webhook 'event' must be a name.")
    return errors


AB_SETTINGS = {
    # name: (lowest, highest, whole numbers only)
    "ab_split": (1, 99, True),
    "ab_test_size": (2, 1_000_000, True),
    "ab_wait_hours": (0, 720, False),
}
# What an A/B test's result depends on: changing any of these starts the test again.
AB_KEYS = ("subject", "subject_b", *AB_SETTINGS)


def _ab_errors(step: dict) -> list[str]:
    """An email step's A/B subject test: ``subject_b`` plus optional split, test size and wait."""
    errors: list[str] = []
    subject_b = step.get("subject_b")
    if subject_b not in (None, ""):
        if not isinstance(subject_b, str) or not subject_b.strip():
            errors.append("subject_b: the second subject must be text.")
        elif len(subject_b) > 300:
            errors.append("subject_b: at most 300 characters.")
        else:
            try:
                template_validate(subject_b, is_html=False)
            except TemplateError as exc:
                errors.append(f"subject_b: {exc}")
    for name, (low, high, whole) in AB_SETTINGS.items():
        if name not in step:
            continue
        value = step[name]
        kinds = int if whole else int | float
        if subject_b in (None, ""):
            errors.append(f"{name}: an A/B test needs subject_b, the second subject to test.")
        elif isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            errors.append(f"{name}: must be a {'whole ' if whole else ''}number from {low} to {high}.")
    return errors


def _cycle_without_wait(steps: list[dict]) -> list[int] | None:
    """A loop through branches that never passes a wait step would run forever in one tick."""
    count = len(steps)

    def successors(position: int) -> list[int]:
        step = steps[position - 1]
        nxt = [position + 1] if position < count else []
        if step.get("kind") == StepKind.BRANCH:
            nxt = [step["goto"], step.get("else_goto", position + 1)]
            nxt = [n for n in nxt if isinstance(n, int) and 1 <= n <= count]
        return nxt

    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    path: list[int] = []

    def visit(position: int) -> list[int] | None:
        if steps[position - 1].get("kind") == StepKind.WAIT:
            return None
        state[position] = 1
        path.append(position)
        for nxt in successors(position):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[position] = 2
        return None

    for start in range(1, count + 1):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _enroll_on_errors(enroll_on: dict) -> list[str]:
    kind = enroll_on.get("kind", "manual")
    if kind not in ENROLL_KINDS:
        return [f"Unknown enrolment trigger {kind!r}; use one of {', '.join(ENROLL_KINDS)}."]
    if kind == "form_submitted":
        slug = enroll_on.get("form")
        if slug is not None and not Form.objects.filter(slug=slug).exists():
            return [f"No form with the slug {slug!r}."]
    if kind == "stage_entered" and enroll_on.get("stage") not in STAGES:
        return [f"stage_entered needs a 'stage' among {', '.join(sorted(STAGES))}."]
    if kind == "segment" and "segment" in enroll_on:
        segment_id = enroll_on["segment"]
        if set(enroll_on) - {"kind", "segment"}:
            return ['A saved segment trigger is {"kind": "segment", "segment": <id>} and nothing else.']
        if isinstance(segment_id, bool) or not isinstance(segment_id, int):
            return ["'segment' must be the id of a saved segment (a whole number)."]
        if not Segment.objects.filter(pk=segment_id).exists():
            return [f"No segment with id {segment_id}."]
        return []
    if kind == "segment":
        errors = []
        if "stage" in enroll_on and enroll_on["stage"] not in STAGES:
            errors.append(f"Unknown stage {enroll_on['stage']!r}.")
        for key in ("min_score", "max_score"):
            value = enroll_on.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100):
                errors.append(f"'{key}' must be a whole number from 0 to 100.")
        fields = enroll_on.get("fields", {})
        if not isinstance(fields, dict):
            errors.append("'fields' must be an object of field: value.")
        else:
            for name in fields:
                try:
                    condition_validate({"field": name, "operator": "equals", "value": fields[name]})
                except ConditionError as exc:
                    errors.append(str(exc))
        if not any(k in enroll_on for k in ("stage", "min_score", "max_score", "fields")):
            errors.append("A segment needs at least a stage, a score range or field values.")
        return errors
    return []


def sequence_validate(data: dict) -> dict:
    """Check a full sequence payload; raise ValidationFailed (400) listing every problem."""
    errors: dict = {}
    steps = data.get("steps", [])
    if not isinstance(steps, list):
        raise ValidationFailed("'steps' must be a list.", fields={"steps": ["Must be a list."]})
    if len(steps) > MAX_STEPS:
        errors["steps"] = [f"At most {MAX_STEPS} steps."]
    step_errors = {}
    for index, step in enumerate(steps, start=1):
        problems = _step_errors(step, index, len(steps)) if isinstance(step, dict) else ["A step must be an object."]
        if problems:
            step_errors[str(index)] = problems
    if step_errors:
        errors["steps"] = step_errors
    else:
        loop = _cycle_without_wait(steps)
        if loop:
            errors["steps"] = [
                f"Steps {' → '.join(map(str, loop))} form a loop without a wait step; add a wait inside the loop."
            ]
    enroll_errors = _enroll_on_errors(data.get("enroll_on") or {"kind": "manual"})
    if enroll_errors:
        errors["enroll_on"] = enroll_errors
    goal_errors = []
    for index, goal in enumerate(data.get("goals") or [], start=1):
        try:
            condition_validate(goal)
        except ConditionError as exc:
            goal_errors.append(f"Goal {index}: {exc}")
    if goal_errors:
        errors["goals"] = goal_errors
    start, end = data.get("send_window_start"), data.get("send_window_end")
    if (start is None) != (end is None):
        errors["send_window_start"] = ["Give both send_window_start and send_window_end, or neither."]
    if any(d not in range(7) for d in data.get("send_days") or []):
        errors["send_days"] = ["Weekdays are 0 (Monday) … 6 (Sunday)."]
    if errors:
        raise ValidationFailed(_summary(errors), fields=errors)
    return data


def _summary(errors: dict) -> str:
    for key, value in errors.items():
        if isinstance(value, dict):
            position, problems = next(iter(value.items()))
            return f"Step {position}: {problems[0]}"
        return f"{key}: {value[0]}" if key != "steps" else value[0]
    return "Invalid sequence."


SEQUENCE_FIELDS = (
    "name",
    "description",
    "active",
    "enroll_on",
    "stop_on_handoff",
    "goals",
    "reenroll",
    "send_window_start",
    "send_window_end",
    "send_days",
    "max_messages_per_day",
)


def _step_rows(sequence: Sequence, steps: list[dict]) -> list[Step]:
    return [
        Step(
            sequence=sequence,
            position=index,
            kind=step["kind"],
            config={k: v for k, v in step.items() if k not in ("kind", "position", "id")},
        )
        for index, step in enumerate(steps, start=1)
    ]


def _snapshot(sequence: Sequence) -> dict:
    data = {field: getattr(sequence, field) for field in SEQUENCE_FIELDS}
    for key in ("send_window_start", "send_window_end"):
        if isinstance(data[key], time):
            data[key] = data[key].strftime("%H:%M")
    data["steps"] = [{"kind": s.kind, **s.config} for s in sequence.steps.order_by("position")]
    return data


@transaction.atomic
def sequence_create(*, data: dict, actor=None) -> Sequence:
    data = {**data, "enroll_on": data.get("enroll_on") or {"kind": "manual"}}
    sequence_validate(data)
    sequence = Sequence.objects.create(
        **{field: data[field] for field in SEQUENCE_FIELDS if field in data},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    Step.objects.bulk_create(_step_rows(sequence, data.get("steps", [])))
    audit_record(actor=actor, action="sequence.created", obj=sequence, changes={"after": _snapshot(sequence)})
    return sequence


@transaction.atomic
def sequence_update(*, sequence: Sequence, data: dict, actor=None) -> Sequence:
    """Update fields and, when ``steps`` is given, replace the steps in place by position.

    Active enrolments keep their position: the step at that position runs next.
    Deactivating pauses every active enrolment (no due time); activating resumes them now.
    """
    sequence = Sequence.objects.select_for_update().get(pk=sequence.pk)
    before = _snapshot(sequence)
    merged = {**before, **data}
    sequence_validate(merged)
    was_active = sequence.active
    for field in SEQUENCE_FIELDS:
        if field in data:
            setattr(sequence, field, data[field])
    sequence.save()
    if "steps" in data:
        existing = {s.position: s for s in sequence.steps.all()}
        new_rows = _step_rows(sequence, data["steps"])
        to_update, to_create = [], []
        for row in new_rows:
            current = existing.pop(row.position, None)
            if current is None:
                to_create.append(row)
            else:
                if current.kind != row.kind or any(current.config.get(k) != row.config.get(k) for k in AB_KEYS):
                    # Another test (or none) from now on: its winner and earlier sends no longer count.
                    current.ab_winner, current.ab_decided_at, current.ab_started_at = "", None, timezone.now()
                current.kind, current.config = row.kind, row.config
                to_update.append(current)
        Step.objects.bulk_update(to_update, ["kind", "config", "ab_winner", "ab_decided_at", "ab_started_at"])
        Step.objects.bulk_create(to_create)
        Step.objects.filter(pk__in=[s.pk for s in existing.values()]).delete()
    active_enrolments = Enrollment.objects.filter(sequence=sequence, status=EnrollmentStatus.ACTIVE)
    if was_active and not sequence.active:
        active_enrolments.update(next_due_at=None)
    elif not was_active and sequence.active:
        active_enrolments.filter(next_due_at__isnull=True).update(next_due_at=timezone.now())
    after = _snapshot(sequence)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before.get(k) != after[k]}
    audit_record(actor=actor, action="sequence.updated", obj=sequence, changes=changes)
    return sequence


@transaction.atomic
def sequence_delete(*, sequence: Sequence, actor=None) -> None:
    if sequence.enrollments.exists():
        raise Conflict(
            "This sequence has enrolments and its history is kept; deactivate it instead of deleting it.",
            code="sequence_in_use",
        )
    audit_record(actor=actor, action="sequence.deleted", obj=sequence, changes={"before": _snapshot(sequence)})
    sequence.delete()

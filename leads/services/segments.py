"""Writes on segments: create, change, delete, and the members of static lists (by lead id, by
email or from a CSV of emails). Each write is audited; bad input is a ValidationFailed naming it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from leadfunnel.audit import audit_record
from leadfunnel.errors import Conflict, ValidationFailed

from ..models import Lead, Segment, SegmentMember
from ..segments.conditions import definition_errors, definition_normalized

MAX_MEMBERS_PER_CALL = 10_000
MAX_CSV_BYTES = 5 * 1024 * 1024


def segment_clean(*, data: Mapping, instance: Segment | None = None) -> dict:
    """Validated fields of a segment (all of them for a new one, those given for a change)."""
    allowed = {"name", "description", "kind", "definition"}
    unknown = set(data) - allowed - {"id", "lead_count", "created_at", "updated_at", "conditions_text"}
    if unknown:
        raise ValidationFailed(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    clean: dict = {}
    if "name" in data or instance is None:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed("Give the segment a name.", fields={"name": ["This field is required."]})
        name = name.strip()
        if len(name) > 200:
            raise ValidationFailed("The name is at most 200 characters.", fields={"name": ["Too long."]})
        taken = Segment.objects.filter(name__iexact=name)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            raise ValidationFailed(f"A segment named '{name}' exists already.", fields={"name": ["Taken."]})
        clean["name"] = name
    if "description" in data:
        description = data.get("description") or ""
        if not isinstance(description, str) or len(description) > 2000:
            raise ValidationFailed("The description is a text of at most 2000 characters.")
        clean["description"] = description
    kind = data.get("kind", instance.kind if instance else Segment.Kind.SMART)
    if kind not in Segment.Kind.values:
        raise ValidationFailed(f"kind is one of: {', '.join(Segment.Kind.values)}.", fields={"kind": ["Unknown."]})
    if instance is not None and kind != instance.kind:
        raise ValidationFailed("A segment's kind cannot change; create a new segment.", fields={"kind": ["Fixed."]})
    clean["kind"] = kind
    if kind == Segment.Kind.SMART and ("definition" in data or instance is None):
        errors = definition_errors(data.get("definition"))
        if errors:
            raise ValidationFailed(errors[0], fields={"definition": errors})
        clean["definition"] = definition_normalized(data["definition"])
    elif kind == Segment.Kind.STATIC and data.get("definition"):
        raise ValidationFailed(
            "A static list has no conditions; add leads to it instead.", fields={"definition": ["Not allowed."]}
        )
    return clean


def segment_create(*, data: Mapping, actor=None) -> Segment:
    fields = segment_clean(data=data)
    created_by = actor if getattr(actor, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            segment = Segment.objects.create(created_by=created_by, **fields)
            audit_record(actor=actor, action="segment.created", obj=segment, changes=fields)
    except IntegrityError:
        raise ValidationFailed(f"A segment named '{fields['name']}' exists already.") from None
    return segment


def segment_update(*, segment: Segment, changes: Mapping, actor=None) -> Segment:
    fields = segment_clean(data=changes, instance=segment)
    fields.pop("kind", None)
    before = {name: getattr(segment, name) for name in fields}
    for name, value in fields.items():
        setattr(segment, name, value)
    try:
        with transaction.atomic():
            segment.save(update_fields=[*fields, "updated_at"])
            audit_record(
                actor=actor,
                action="segment.updated",
                obj=segment,
                changes={k: [before[k], v] for k, v in fields.items() if before[k] != v},
            )
    except IntegrityError:
        raise ValidationFailed(f"A segment named '{fields.get('name')}' exists already.") from None
    return segment


def segment_delete(*, segment: Segment, actor=None) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="segment.deleted", obj=segment, changes={"name": segment.name})
        segment.delete()


def _static(segment: Segment) -> None:
    if segment.kind != Segment.Kind.STATIC:
        raise Conflict(
            "Leads are added to static lists only; a smart segment's members follow its conditions.",
            code="not_a_static_list",
        )


def _ids(lead_ids: Iterable) -> list[int]:
    ids = []
    for value in lead_ids:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
            raise ValidationFailed(f"'{value}' is not a lead id.", fields={"leads": ["Lead ids are whole numbers."]})
        ids.append(int(value))
    if len(ids) > MAX_MEMBERS_PER_CALL:
        raise ValidationFailed(f"At most {MAX_MEMBERS_PER_CALL} leads at a time.")
    return list(dict.fromkeys(ids))


def segment_members_add(*, segment: Segment, lead_ids: Iterable, actor=None) -> int:
    """Put the existing leads among ``lead_ids`` on the static list; return how many were added
    (leads already on it are left alone)."""
    _static(segment)
    ids = _ids(lead_ids)
    existing = list(Lead.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if not existing:
        return 0
    now = timezone.now()
    who = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        before = SegmentMember.objects.filter(segment=segment).count()
        SegmentMember.objects.bulk_create(
            [SegmentMember(segment=segment, lead_id=lead_id, added_at=now, added_by=who) for lead_id in existing],
            ignore_conflicts=True,
            batch_size=2000,
        )
        added = SegmentMember.objects.filter(segment=segment).count() - before
        audit_record(actor=actor, action="segment.members_added", obj=segment, changes={"added": added})
    return added


def segment_members_remove(*, segment: Segment, lead_ids: Iterable, actor=None) -> int:
    _static(segment)
    ids = _ids(lead_ids)
    with transaction.atomic():
        removed, _ = SegmentMember.objects.filter(segment=segment, lead_id__in=ids).delete()
        if removed:
            audit_record(actor=actor, action="segment.members_removed", obj=segment, changes={"removed": removed})
    return removed


def segment_members_add_emails(*, segment: Segment, emails: Iterable[str], actor=None) -> tuple[int, list[str]]:
    """Add the leads with these emails (any letter case); return (added, emails with no lead)."""
    _static(segment)
    wanted = list(dict.fromkeys(e.strip().lower() for e in emails if isinstance(e, str) and e.strip()))
    if len(wanted) > MAX_MEMBERS_PER_CALL:
        raise ValidationFailed(f"At most {MAX_MEMBERS_PER_CALL} emails at a time.")
    found = dict(Lead.objects.filter(email__in=wanted).values_list("email", "pk"))
    added = segment_members_add(segment=segment, lead_ids=list(found.values()), actor=actor) if found else 0
    return added, [e for e in wanted if e not in found]


def emails_from_csv(raw: bytes) -> list[str]:
    """The emails of a CSV: the ``email`` column when there is a header naming it, else the first
    column (rows without an @ are skipped, so a header of another name is too)."""
    if len(raw) > MAX_CSV_BYTES:
        raise ValidationFailed("The CSV file is larger than 5 MB.", fields={"file": ["Too large."]})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The CSV file is not UTF-8 text.", fields={"file": ["Not UTF-8."]}) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValidationFailed("The CSV file is empty.", fields={"file": ["Empty."]})
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("email") if "email" in header else 0
    emails = [row[column].strip() for row in rows if len(row) > column and "@" in row[column]]
    if not emails:
        raise ValidationFailed("No email address found in the CSV file.", fields={"file": ["No emails."]})
    return emails


def segment_members_import_csv(*, segment: Segment, raw: bytes, actor=None) -> tuple[int, list[str]]:
    _static(segment)
    return segment_members_add_emails(segment=segment, emails=emails_from_csv(raw), actor=actor)

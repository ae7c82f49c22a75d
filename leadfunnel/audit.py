"""Audit log: who changed rules, settings, sequences, users and stages."""

from .models import AuditEvent


def audit_record(
    *, actor, action: str, obj=None, object_type: str = "", object_id: str = "", changes: dict | None = None
) -> AuditEvent:
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    return AuditEvent.objects.create(
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        changes=changes or {},
    )


def audit_record_many(*, actor, action: str, object_type: str, items: list[tuple[str, dict]]) -> None:
    """:func:`audit_record` for many objects of one kind at once: ``items`` are (object id, changes)."""
    who = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(actor=who, action=action, object_type=object_type, object_id=object_id, changes=changes)
            for object_id, changes in items
        ]
    )

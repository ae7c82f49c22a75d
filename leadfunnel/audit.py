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

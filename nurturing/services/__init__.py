"""Nurturing writes. Import from here: ``from nurturing.services import process_due_steps``."""

from .enrollment import (
    HANDOFF_STAGES,
    enroll_on_form,
    enroll_on_forms,
    enroll_on_stage,
    enrollment_create,
    enrollments_create,
    enrollments_exit,
    goals_check_interactions,
    goals_check_stage,
    leads_matching,
    segments_enroll,
)
from .executor import deliver_executions, deliver_pending, due_count, process_due_steps
from .sequences import sequence_create, sequence_delete, sequence_update, sequence_validate
from .templates import email_template_create, email_template_delete, email_template_update
from .tracking import lead_unsubscribe, message_record_click, message_record_open

__all__ = [
    "HANDOFF_STAGES",
    "deliver_executions",
    "deliver_pending",
    "email_template_create",
    "email_template_delete",
    "email_template_update",
    "due_count",
    "enroll_on_form",
    "enroll_on_forms",
    "enroll_on_stage",
    "enrollment_create",
    "enrollments_create",
    "enrollments_exit",
    "goals_check_interactions",
    "goals_check_stage",
    "lead_unsubscribe",
    "leads_matching",
    "message_record_click",
    "message_record_open",
    "process_due_steps",
    "segments_enroll",
    "sequence_create",
    "sequence_delete",
    "sequence_update",
    "sequence_validate",
]

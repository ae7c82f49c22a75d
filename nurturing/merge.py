"""Nurturing's part of merging two leads (``leads.services.lead_merge`` calls it inside its
transaction): the duplicate's enrolments and messages move to the survivor. A lead is in a
sequence at most once at a time, so when both are active in the same sequence the survivor's
enrolment goes on and the duplicate's ends (exit reason ``merged``)."""

from datetime import datetime

from django.db.models import Q

from leads.services import lead_merge_hook

from .models import Enrollment, EnrollmentStatus, ExitReason, Message


@lead_merge_hook
def nurturing_merge_leads(*, survivor_id: int, duplicate_id: int, now: datetime) -> dict[str, int]:
    """Three statements: end the duplicate's enrolments that clash, move enrolments, move messages."""
    survivor_active = Enrollment.objects.filter(lead_id=survivor_id, status=EnrollmentStatus.ACTIVE).values(
        "sequence_id"
    )
    ended = Enrollment.objects.filter(
        Q(sequence_id__in=survivor_active), lead_id=duplicate_id, status=EnrollmentStatus.ACTIVE
    ).update(status=EnrollmentStatus.EXITED, exit_reason=ExitReason.MERGED, exited_at=now, next_due_at=None)
    enrollments = Enrollment.objects.filter(lead_id=duplicate_id).update(lead_id=survivor_id)
    messages = Message.objects.filter(lead_id=duplicate_id).update(lead_id=survivor_id)
    return {"nurturing.enrollment": enrollments, "nurturing.enrollment_ended": ended, "nurturing.message": messages}

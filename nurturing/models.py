"""Nurture sequences, their steps, the leads enrolled in them, and what was sent.

Exactly-once: every executed step is one :class:`StepExecution` row, unique per
(enrollment, run) where ``run`` is the enrolment's step counter. The row is
committed before a message goes to the provider, and delivery claims it with a
compare-and-swap (pending → sending), so a second worker, a retried task or a
duplicate beat tick finds nothing left to do.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadfunnel.models import TimeStampedModel
from leadfunnel.privacy import PersonalData


class Sequence(TimeStampedModel):
    class Reenroll(models.TextChoices):
        NEVER = "never", "Never (once per lead)"
        AFTER_EXIT = "after_exit", "Again after leaving early (exit or goal)"
        ALWAYS = "always", "Again whenever the trigger fires and the lead is not in it"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    active = models.BooleanField(default=True)
    # {"kind": "manual"} | {"kind": "form_submitted", "form": slug} | {"kind": "stage_entered", "stage": s}
    # | {"kind": "segment", "segment": <saved segment id>}
    # | {"kind": "segment", "stage": s, "min_score": n, "max_score": n, "fields": {name: value}} (older inline form)
    enroll_on = models.JSONField(default=dict, blank=True)
    # Leave the sequence when the lead is handed to sales (MQL/PQL/SAL/SQL/customer).
    stop_on_handoff = models.BooleanField(default=True)
    # Conditions shaped like scoring-rule conditions; reaching any one exits with goal_reached.
    goals = models.JSONField(default=list, blank=True)
    reenroll = models.CharField(max_length=20, choices=Reenroll.choices, default=Reenroll.NEVER)
    # Messages go out only inside this local window (lead's time zone, else TIME_ZONE).
    send_window_start = models.TimeField(null=True, blank=True)
    send_window_end = models.TimeField(null=True, blank=True)
    # Weekdays messages may go out (0 = Monday … 6 = Sunday); empty = every day.
    send_days = models.JSONField(default=list, blank=True)
    # Per-lead cap across all sequences (messages per 24 hours); null = NURTURE_MAX_MESSAGES_PER_DAY.
    max_messages_per_day = models.PositiveSmallIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class StepKind(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"
    WAIT = "wait"
    BRANCH = "branch"
    ACTION = "action"


MESSAGE_KINDS = frozenset({StepKind.EMAIL, StepKind.SMS})


class Step(models.Model):
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=StepKind.choices)
    # The step as marketers wrote it (subject/body, minutes, condition/goto, action…), minus "kind".
    config = models.JSONField(default=dict, blank=True)
    # A/B subject test of an email step (config "subject_b"): the winning variant once chosen by
    # click rate after the test group ("a" or "b"; empty while testing). Cleared when the subjects
    # or the test settings change.
    ab_winner = models.CharField(max_length=1, blank=True, default="")
    ab_decided_at = models.DateTimeField(null=True, blank=True)
    # When the current test began: messages sent before (an earlier test of this position) don't count.
    ab_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sequence_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "position"], name="step_position_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.sequence_id}#{self.position} {self.kind}"


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    GOAL_REACHED = "goal_reached"


class ExitReason(models.TextChoices):
    GOAL = "goal", "Goal reached"
    HANDOFF = "handoff", "Handed to sales"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Hard bounce"
    DISQUALIFIED = "disqualified", "Disqualified"
    MANUAL = "manual", "Removed by hand"
    SEQUENCE_INACTIVE = "sequence_inactive", "Sequence deactivated"
    ERASED = "erased", "Person's data erased"
    MERGED = "merged", "Merged into another lead's enrolment"


class Enrollment(models.Model):
    # No single-column indexes on lead and sequence: the composite indexes below lead with them,
    # and every executor pass rewrites each claimed row in all of its indexes.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    status = models.CharField(max_length=20, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE)
    # Position of the next step to execute.
    current_step = models.PositiveSmallIntegerField(default=0)
    # Steps executed so far: the next execution is run + 1 (the exactly-once key).
    run = models.PositiveIntegerField(default=0)
    next_due_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    # What enrolled the lead: "manual", "form:<slug>", "stage:<stage>", "segment".
    source = models.CharField(max_length=120, blank=True, default="")
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=30, choices=ExitReason.choices, blank=True, default="")
    goal = models.JSONField(null=True, blank=True)
    # The executor batch that last claimed this enrolment (claims are row locks; this is the trace).
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")

    # Enrolments hold no free text about the person; they are exported (and exited on erasure
    # by the ``lead.erased`` handler), their rows kept for the sequences' figures.
    personal_data = PersonalData(
        kind="enrollments",
        export=(
            "sequence_id",
            "sequence__name",
            "status",
            "current_step",
            "enrolled_at",
            "source",
            "exited_at",
            "exit_reason",
            "next_due_at",
        ),
        order_by=("enrolled_at", "id"),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "sequence"],
                condition=Q(status="active"),
                name="enrollment_one_active_per_lead",
            ),
        ]
        indexes = [
            # The executor's claim: active enrolments due now, oldest first.
            models.Index(fields=["next_due_at"], name="enrollment_due_idx", condition=Q(status="active")),
            # Enrolment lists and stats of one sequence.
            models.Index(fields=["sequence", "status"], name="enrollment_seq_status_idx"),
            # Exits and goals for one lead (handlers); "is this lead in this sequence" (re-enrolment
            # policy, bulk enrolment) without touching the sequence's other enrolments.
            models.Index(fields=["lead", "sequence", "status"], name="enrollment_lead_seq_idx"),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} in sequence {self.sequence_id} ({self.status})"


class ExecutionState(models.TextChoices):
    PENDING = "pending"  # written, message not yet handed to the provider
    SENDING = "sending"  # claimed by a deliverer; the provider call is in flight
    SENT = "sent"
    DONE = "done"  # wait / branch / action steps
    FAILED = "failed"
    SKIPPED = "skipped"


class StepExecution(models.Model):
    # Indexed by stepexecution_once (enrollment, run) and execution_stats_idx (sequence, …).
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="executions", db_index=False)
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="+", db_index=False)
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions")
    position = models.PositiveSmallIntegerField()
    run = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=StepKind.choices)
    state = models.CharField(max_length=10, choices=ExecutionState.choices, default=ExecutionState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    # A provider's refusal may quote the recipient.
    personal_data = PersonalData(kind="step_executions", lead="enrollment__lead", erase={"error": "", "detail": {}})

    class Meta:
        constraints = [
            # The exactly-once record: one execution per enrolment tick (and so per step run).
            models.UniqueConstraint(fields=["enrollment", "run"], name="stepexecution_once"),
        ]
        indexes = [
            # Delivery sweeper: pending sends whose lease or backoff has passed.
            models.Index(
                fields=["next_attempt_at"], name="execution_pending_idx", condition=Q(state__in=["pending", "sending"])
            ),
            # Per-step stats of a sequence.
            models.Index(fields=["sequence", "position", "state"], name="execution_stats_idx"),
        ]

    def __str__(self) -> str:
        return f"enrollment {self.enrollment_id} run {self.run} ({self.kind}, {self.state})"


class Message(models.Model):
    class Purpose(models.TextChoices):
        NURTURE = "nurture"
        NOTIFICATION = "notification"  # notify_owner: to a rep, not counted against the lead's cap

    execution = models.OneToOneField(
        StepExecution, null=True, blank=True, on_delete=models.CASCADE, related_name="message"
    )
    # Indexed by message_lead_time_idx (lead, -created_at).
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="nurture_messages", db_index=False)
    sequence = models.ForeignKey(Sequence, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.NURTURE)
    channel = models.CharField(max_length=10)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=300, blank=True, default="")
    # The subject variant of an A/B-tested email step ("a" or "b"); empty for other messages.
    variant = models.CharField(max_length=1, blank=True, default="")
    body = models.TextField()  # HTML for email, text for SMS
    text_body = models.TextField(blank=True, default="")
    # Random public id; tracking links carry it signed (see nurturing/tracking.py). Unique through
    # a constraint (Meta): looked up by equality only, so without unique=True's extra LIKE index.
    token = models.CharField(max_length=32)
    # The URLs the email linked to, in order; a click link redirects only to one of these.
    links = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # The email provider's id for the sent message (anymail's ``anymail_status.message_id``): its
    # tracking webhooks name the message by it.
    provider_message_id = models.CharField(max_length=255, null=True, blank=True)

    # The rows stay for the sequences' figures (sent, opened, clicked); what they said goes.
    personal_data = PersonalData(
        kind="messages",
        erase={"to": "", "subject": "", "body": "", "text_body": "", "links": []},
        export=(
            "sequence_id",
            "position",
            "purpose",
            "channel",
            "to",
            "subject",
            "text_body",
            "created_at",
            "sent_at",
            "opened_at",
            "clicked_at",
        ),
        order_by=("created_at", "id"),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token"], name="message_token_unique"),
        ]
        indexes = [
            # Frequency cap: a lead's messages in the last 24 hours; the lead's timeline.
            models.Index(fields=["lead", "-created_at"], name="message_lead_time_idx"),
            # A provider's tracking event finds its message.
            models.Index(
                fields=["provider_message_id"],
                name="message_provider_id_idx",
                condition=Q(provider_message_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to}"


class ProviderEvent(models.Model):
    """A tracking event an email provider posted (delivered, bounced, opened…), once: the provider's
    event id is unique per provider, so a re-posted event changes nothing the second time."""

    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200)
    # What LeadFunnel made of it: delivered, open, click, bounce, soft_bounce, complaint, unsubscribe.
    kind = models.CharField(max_length=20)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["esp", "event_id"], name="provider_event_once")]

    def __str__(self) -> str:
        return f"{self.esp} {self.kind} {self.event_id}"


class SoftBounceRun(models.Model):
    """Soft bounces in a row for one address (a keyed hash of it), one per message: three make a
    hard bounce; a delivery or an open ends the run."""

    email_hash = models.CharField(max_length=64, unique=True)
    count = models.PositiveSmallIntegerField(default=0)
    last_message_key = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.email_hash[:12]}…: {self.count} soft bounce(s)"


class EmailTemplate(TimeStampedModel):
    """A saved email (subject and body) marketers start email steps from. Copied into a step,
    never linked: editing a template does not change the sequences already built from it."""

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # One template per name, whatever the letter case (the picker lists them by name).
            models.UniqueConstraint(models.functions.Lower("name"), name="emailtemplate_name_ci_uniq"),
        ]

    def __str__(self) -> str:
        return self.name

from django.conf import settings
from django.db import models
from django.utils import timezone

from .privacy import PersonalData


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class OutboxMessage(models.Model):
    """A side effect written in the same transaction as the change that causes it.

    Delivered by Celery (``leadfunnel.tasks.dispatch_outbox_messages``) right after
    commit; when the broker is down the periodic sweeper delivers whatever is
    still pending once it is back. A message is dispatched at most once: the
    dispatcher claims it with ``SELECT … FOR UPDATE SKIP LOCKED`` and marks it
    in the same transaction as the handler's own writes.
    """

    topic = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The sweeper's query: pending messages that are due, oldest first.
            models.Index(
                fields=["available_at"],
                name="outbox_pending_idx",
                condition=models.Q(dispatched_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic}#{self.pk}"


class AuditEvent(models.Model):
    """Who changed rules, settings, sequences, users and stages, and what changed."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64, blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id}"


# --- Outgoing webhooks, notifications and lead ownership history ----------------------------------


class WebhookSubscription(TimeStampedModel):
    """An integration that wants to hear about some events (see ``leadfunnel.webhooks.EVENTS``)."""

    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True, default="")
    active = models.BooleanField(default=True)
    # Failed attempts in a row; reset by any success. Reaching WEBHOOKS_DISABLE_AFTER_FAILURES disables.
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Webhook {self.pk} → {self.url}"


class WebhookDelivery(models.Model):
    """One event to send to one subscription, with its attempts (the delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERING = "delivering"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=100)
    # Identifies the event for this subscription, so a re-run handler never queues it twice.
    dedupe_key = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_response_body = models.TextField(blank=True, default="")
    # [{"at", "status_code", "error", "duration_ms"}] for every attempt, oldest first.
    attempt_log = models.JSONField(default=list, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The retry sweeper: deliveries waiting for their next attempt, soonest first.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due_idx",
                condition=models.Q(status__in=["pending", "retrying"]),
            ),
            # A subscription's delivery log, newest first.
            models.Index(fields=["subscription", "-created_at"], name="webhook_delivery_log_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "dedupe_key"], name="webhook_delivery_dedupe_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → webhook {self.subscription_id} ({self.status})"


class Notification(models.Model):
    """An email to a user, written in the transaction that causes it and sent after commit, once."""

    class Kind(models.TextChoices):
        MQL_ASSIGNED = "mql_assigned"
        LEAD_ASSIGNED = "lead_assigned"
        SLA_BREACHED = "sla_breached"
        SLA_REASSIGNED = "sla_reassigned"
        WEBHOOK_DISABLED = "webhook_disabled"
        IMPORT_FINISHED = "import_finished"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    # What this notification is about, once per recipient (idempotent handlers).
    dedupe_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The sender's sweep: unsent notifications, oldest first.
            models.Index(
                fields=["created_at"], name="notification_unsent_idx", condition=models.Q(sent_at__isnull=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "dedupe_key"], name="notification_dedupe_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient_id}"


class LeadAssignment(models.Model):
    """Ownership history of a lead beyond stage changes (SLA reassignment, a sequence, by hand), for
    the timeline. A rep routed to a new MQL/PQL is recorded on the stage transition itself."""

    class Cause(models.TextChoices):
        SLA = "sla", "SLA breached, reassigned"
        MANUAL = "manual", "Reassigned by hand"
        SEQUENCE = "sequence", "Assigned by a nurture sequence"
        EXPANSION = "expansion", "A customer's expansion, handed to sales"

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="assignments")
    from_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    cause = models.CharField(max_length=20, choices=Cause.choices, default=Cause.SLA)
    reason = models.TextField(blank=True, default="")
    cycle = models.PositiveIntegerField(default=1)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    personal_data = PersonalData(
        kind="assignments",
        erase={"reason": ""},
        export=("at", "cause", "reason", "cycle", "from_owner__username", "to_owner__username"),
        order_by=("at", "id"),
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # A lead's timeline.
            models.Index(fields=["lead", "at"], name="assignment_lead_at_idx"),
            # SLA report: reassignments away from a rep in a period.
            models.Index(fields=["from_owner", "at"], name="assignment_from_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id}: {self.from_owner_id} → {self.to_owner_id}"

"""Leads, companies, the funnel's stage history, interactions, forms and the sales workflow records."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadfunnel.models import TimeStampedModel
from leadfunnel.privacy import PersonalData


class Stage(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    MQL = "mql", "MQL"
    SAL = "sal", "SAL"
    SQL = "sql", "SQL"
    CUSTOMER = "customer", "Customer"
    PQL = "pql", "PQL"
    RECYCLED = "recycled", "Recycled"
    DISQUALIFIED = "disqualified", "Disqualified"
    LOST = "lost", "Lost"


class TransitionCause(models.TextChoices):
    USER = "user", "A person"
    RULE = "rule", "A scoring rule"
    SEQUENCE = "sequence", "A nurture sequence"
    API = "api", "An integration (API)"
    SLA = "sla", "SLA enforcement"
    SYSTEM = "system", "The system"


class RejectionReason(models.TextChoices):
    WRONG_PERSON = "wrong_person", "Wrong person"
    NO_BUDGET_YET = "no_budget_yet", "No budget yet"
    NOT_READY = "not_ready", "Not ready to talk"
    BAD_DATA = "bad_data", "Bad data"
    STUDENT = "student", "Student"
    COMPETITOR = "competitor", "Competitor"
    DUPLICATE = "duplicate", "Duplicate"
    SPAM = "spam", "Spam"
    NO_RESPONSE = "no_response", "No response"
    OTHER = "other", "Other"


class LossReason(models.TextChoices):
    PRICE = "price", "Price"
    COMPETITOR = "competitor", "Chose a competitor"
    NO_DECISION = "no_decision", "No decision"
    TIMING = "timing", "Timing"
    FEATURES = "features", "Missing features"
    OTHER = "other", "Other"


class Channel(models.TextChoices):
    INBOUND = "inbound", "Inbound (form)"
    EVENT = "event", "Event"
    INTERACTION = "interaction", "Interaction-based"
    IMPORT = "import", "Import"
    API = "api", "API / integration"
    PRODUCT = "product", "Product (trial / free plan)"
    MANUAL = "manual", "Entered by hand"


class ConsentStatus(models.TextChoices):
    NONE = "none", "None given"
    PENDING = "pending", "Pending confirmation (double opt-in)"
    OPT_IN = "opt_in", "Opted in"
    OPT_OUT = "opt_out", "Withdrawn (opted out)"


class Company(TimeStampedModel):
    name = models.CharField(max_length=200)
    # Lower-cased email domain; only set for business domains (not free-mail).
    domain = models.CharField(max_length=253, null=True, blank=True, unique=True)
    size_band = models.CharField(max_length=20, blank=True, default="")
    employees = models.PositiveIntegerField(null=True, blank=True)
    industry = models.CharField(max_length=100, blank=True, default="")
    country = models.CharField(max_length=100, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class Lead(TimeStampedModel):
    # Stored lower-cased (trimmed), so uniqueness and lookups are case-insensitive
    # and the intake can upsert with ON CONFLICT on a plain unique index.
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    title = models.CharField(max_length=150, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")
    company_name = models.CharField(max_length=200, blank=True, default="")
    company_size = models.CharField(max_length=20, blank=True, default="")
    industry = models.CharField(max_length=100, blank=True, default="")
    country = models.CharField(max_length=100, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")
    linkedin = models.CharField(max_length=200, blank=True, default="")
    twitter = models.CharField(max_length=100, blank=True, default="")
    custom_fields = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)

    # Marketing consent. ``consent_status`` is the truth (leads.consent); ``consent`` is kept equal
    # to "opted in" for integrations that still read and write the boolean.
    consent = models.BooleanField(default=False)
    consent_status = models.CharField(max_length=10, choices=ConsentStatus.choices, default=ConsentStatus.NONE)
    # When and how the current status was given: "form:<slug>", "import:<job>", "api:<user>",
    # "user:<name>", "double_opt_in:<slug>"; the confirming IP for a double opt-in.
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=200, blank=True, default="")
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    email_bounced_at = models.DateTimeField(null=True, blank=True)

    # First touch: how the lead came in.
    source = models.CharField(max_length=100, blank=True, default="")
    channel = models.CharField(max_length=20, choices=Channel.choices, blank=True, default="")
    first_form = models.ForeignKey("Form", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    utm_source = models.CharField(max_length=200, blank=True, default="")
    utm_medium = models.CharField(max_length=200, blank=True, default="")
    utm_campaign = models.CharField(max_length=200, blank=True, default="")
    first_page_url = models.CharField(max_length=2000, blank=True, default="")

    # Funnel position. Changed only by leads.services.lead_change_stage.
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.VISITOR)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    cycle = models.PositiveIntegerField(default=1)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_leads"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    sla_escalated_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)

    # Scores, maintained incrementally by the scoring app.
    score = models.SmallIntegerField(default=0)
    fit_score = models.SmallIntegerField(default=0)
    engagement_score = models.SmallIntegerField(default=0)
    fit_points = models.FloatField(default=0)
    engagement_points = models.FloatField(default=0)
    # Engagement points are stored as of this instant; decay is applied relative to it.
    engagement_points_at = models.DateTimeField(null=True, blank=True)
    mql_blocked = models.BooleanField(default=False)
    score_updated_at = models.DateTimeField(null=True, blank=True)
    predicted_probability = models.FloatField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # Set when the person's data was erased (leads.services.privacy): the row stays, anonymised,
    # for the funnel's history, and takes no further part in scoring, nurturing, queues or sends.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # A rep's queue: their MQLs, oldest SLA first.
            models.Index(fields=["owner", "stage", "sla_due_at"], name="lead_queue_idx"),
            # Leads list filtered by stage, newest first; funnel drill-downs.
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created_idx"),
            models.Index(fields=["-created_at"], name="lead_created_idx"),
            models.Index(fields=["-score"], name="lead_score_idx"),
            models.Index(fields=["source"], name="lead_source_idx"),
            # The SLA report: leads assigned within a period.
            models.Index(fields=["assigned_at"], name="lead_assigned_at_idx"),
            # SLA sweeper: open MQLs with a deadline.
            models.Index(fields=["sla_due_at"], name="lead_sla_due_idx", condition=Q(stage="mql")),
            # The tag filter (``tags @> '["x"]'``) is served by a GIN index (jsonb_path_ops) that
            # migration 0007 creates on PostgreSQL only.
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class LeadAlias(models.Model):
    """An email that once belonged to a lead merged into ``lead``: every later intake of the
    address (form, API, interactions, import) resolves to ``lead``. Emails are stored lower-cased,
    like ``Lead.email``; an address is an alias of one lead only."""

    email = models.EmailField(max_length=254, unique=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="aliases")
    merged_lead_id = models.BigIntegerField(help_text="The id the merged lead had.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "lead aliases"

    def __str__(self) -> str:
        return f"{self.email} → lead {self.lead_id}"


class StageTransition(models.Model):
    """One move of a lead between stages: the history every funnel figure is computed from.

    On PostgreSQL the table also carries a copy of the lead's attribution (``lead_source``,
    ``lead_channel``, ``lead_utm_campaign``, ``lead_first_form_id``), outside the model: triggers
    fill it on insert and keep it equal to the lead's own columns when those change (migration
    0003). The funnel reports group by it without joining the leads table; other databases join.
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True, default="")
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cause = models.CharField(max_length=20, choices=TransitionCause.choices, default=TransitionCause.SYSTEM)
    # What caused it beyond a person: "rule:12", "sequence:3", "api:token-user", ...
    cause_ref = models.CharField(max_length=100, blank=True, default="")
    reason_code = models.CharField(max_length=40, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    cycle = models.PositiveIntegerField(default=1)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Snapshot of what justified the move (score, contributing rules, qualification facts).
    details = models.JSONField(default=dict, blank=True)

    # The history stays (the funnel's figures come from it); the free text about the person goes.
    personal_data = PersonalData(
        kind="stage_history",
        erase={"reason": "", "details": {}},
        export=("from_stage", "to_stage", "at", "cause", "reason_code", "reason", "cycle", "details"),
        order_by=("at", "id"),
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # A lead's history, in order.
            models.Index(fields=["lead", "at"], name="transition_lead_at_idx"),
            # Funnel analytics: entries into a stage within a period.
            models.Index(fields=["to_stage", "at"], name="transition_to_at_idx"),
            # On PostgreSQL, migration 0003 adds a covering index on (at) for the funnel reports.
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_stage or '∅'} → {self.to_stage}"


class InteractionType(models.TextChoices):
    PAGE_VIEW = "page_view"
    FORM_SUBMIT = "form_submit"
    CONTENT_DOWNLOAD = "content_download"
    EMAIL_SENT = "email_sent"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_BOUNCE = "email_bounce"
    # From the email provider's tracking webhooks (a soft bounce is temporary; three in a row make
    # a hard one, recorded as email_bounce).
    EMAIL_DELIVERED = "email_delivered"
    EMAIL_SOFT_BOUNCE = "email_soft_bounce"
    EMAIL_COMPLAINT = "email_complaint"
    # A marketing message a sequence did not send (no consent, or a suppressed address).
    MESSAGE_SKIPPED = "message_skipped"
    UNSUBSCRIBE = "unsubscribe"
    WEBINAR_REGISTERED = "webinar_registered"
    WEBINAR_ATTENDED = "webinar_attended"
    EVENT_ATTENDED = "event_attended"
    TRADE_SHOW_VISIT = "trade_show_visit"
    DEMO_REQUEST = "demo_request"
    TRIAL_STARTED = "trial_started"
    PRODUCT_USAGE = "product_usage"
    SOCIAL_FOLLOW = "social_follow"
    SMS_SENT = "sms_sent"
    SMS_CLICK = "sms_click"
    UPGRADE_INTEREST = "upgrade_interest"
    # Logged by people on the lead's page (or through the API): what sales and marketing did with
    # the lead. Scoring rules can match them like any interaction (e.g. a call with outcome
    # "connected"); the predictive model leaves them out (they follow the funnel, they do not
    # predict it).
    NOTE = "note"
    CALL = "call"
    MEETING = "meeting"


# Interactions a person logs about a lead (not something the lead did).
SALES_ACTIVITY_TYPES = frozenset({InteractionType.NOTE, InteractionType.CALL, InteractionType.MEETING})


class Interaction(models.Model):
    """Append-only: what a lead did (or what we sent them). Never updated after insert.

    Nothing else refers to its rows by a database constraint and it carries no unique constraint
    but its id (an integration's event ids are kept unique in :class:`InteractionKey`), so the
    table can be range-partitioned by month (the primary key then becoming ``(id, occurred_at)``).
    """

    # No index of its own: the (lead, time) and (lead, type, time) indexes below lead with it.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    type = models.CharField(max_length=40, choices=InteractionType.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=100, blank=True, default="")
    # An integration's own id for the event, to drop duplicates it re-sends.
    external_id = models.CharField(max_length=200, null=True, blank=True)

    # Erasure keeps the events (counts, funnel) without what they said (URLs, fields, ids).
    personal_data = PersonalData(
        kind="interactions",
        erase={"properties": {}, "external_id": None},
        export=("type", "occurred_at", "received_at", "source", "properties"),
        order_by=("occurred_at", "id"),
    )

    class Meta:
        indexes = [
            # Timeline and per-lead scoring: a lead's events, newest first.
            models.Index(fields=["lead", "-occurred_at"], name="interaction_lead_time_idx"),
            # Set-based recompute and analytics by type over time; with the lead id a segment's
            # "did X (N times) in the window" reads its lead ids from the index alone.
            models.Index(fields=["type", "occurred_at", "lead"], name="interaction_type_time_lead_idx"),
            # A segment's "never did X": one probe per lead (or the doers hashed once).
            models.Index(fields=["lead", "type", "occurred_at"], name="interaction_lead_type_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} by lead {self.lead_id}"


class InteractionKey(models.Model):
    """An integration's own id for an event (``source``, ``external_id``), once: a re-sent event is
    recognised here and dropped. Kept apart from the interactions so that table has no unique
    constraint that would forbid partitioning it by time."""

    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=200)
    interaction_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="interaction_key_uniq")]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} → interaction {self.interaction_id}"


class Form(TimeStampedModel):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.INBOUND)
    # What kind of inbound form: content_download, contact, demo_request, paid_landing, webinar, event...
    kind = models.CharField(max_length=40, blank=True, default="contact")
    # Points this form's submissions are worth (channels are not equal).
    channel_weight = models.IntegerField(default=0)
    allowed_origins = models.JSONField(default=list, blank=True)
    overwrite_profile = models.BooleanField(default=False)
    # Submissions leave consent pending and get one confirmation email; marketing waits for the click.
    double_opt_in = models.BooleanField(default=False)
    honeypot_field = models.CharField(max_length=50, default="website")
    success_message = models.CharField(max_length=300, blank=True, default="Thank you!")
    redirect_url = models.CharField(max_length=2000, blank=True, default="")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


class FormSubmission(models.Model):
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="submissions")
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")
    payload = models.JSONField(default=dict)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True, default="")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    is_spam = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)

    personal_data = PersonalData(
        kind="submissions",
        erase={"payload": {}, "ip": None, "user_agent": "", "idempotency_key": None},
        export=("form__slug", "received_at", "payload", "ip", "user_agent", "is_spam"),
        order_by=("received_at", "id"),
    )

    class Meta:
        indexes = [models.Index(fields=["form", "-received_at"], name="submission_form_time_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["form", "idempotency_key"],
                name="submission_idempotency_uniq",
                condition=Q(idempotency_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Submission {self.pk} of form {self.form_id}"


class ConsentRequest(models.Model):
    """A double opt-in: the confirmation email a form submission asked for, and its answer.

    Written by an outbox handler after the submission commits, sent once by a claim-then-act task
    (``claimed_at`` compare-and-swap), confirmed from the signed link's page (time and IP).
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="consent_requests")
    form = models.ForeignKey(Form, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open request per lead: a second submission while pending sends no second email.
            models.UniqueConstraint(
                fields=["lead"], condition=Q(confirmed_at__isnull=True), name="consent_request_one_open"
            ),
        ]
        indexes = [
            # The sender's sweep: unsent requests, oldest first.
            models.Index(fields=["created_at"], name="consent_request_unsent_idx", condition=Q(sent_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"Consent request {self.pk} for lead {self.lead_id}"


class Opportunity(TimeStampedModel):
    class Status(models.TextChoices):
        OPEN = "open"
        WON = "won"
        LOST = "lost"

    class Kind(models.TextChoices):
        NEW = "new", "New business (SQL)"
        # A customer who signalled they want more (the "service qualified lead"): the person stays
        # a customer in the stage history; the expansion is this opportunity, routed to a rep.
        EXPANSION = "expansion", "Expansion (service qualified)"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="opportunities")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NEW)
    # For an expansion: the configured signal that opened it, and the event.
    signal = models.CharField(max_length=200, blank=True, default="")
    signal_interaction_id = models.BigIntegerField(null=True, blank=True)
    cycle = models.PositiveIntegerField(default=1)
    buying_cycle = models.TextField()
    influencer = models.TextField()
    timeframe = models.CharField(max_length=200)
    opportunity_size = models.DecimalField(max_digits=14, decimal_places=2)
    next_step = models.TextField()
    budget = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    close_reason_code = models.CharField(max_length=40, blank=True, default="")
    close_reason = models.TextField(blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Amounts and outcome stay for the pipeline figures; the rep's notes about the person go.
    personal_data = PersonalData(
        kind="opportunities",
        erase={"buying_cycle": "", "influencer": "", "timeframe": "", "next_step": "", "close_reason": ""},
        export=(
            "cycle",
            "status",
            "buying_cycle",
            "influencer",
            "timeframe",
            "opportunity_size",
            "next_step",
            "budget",
            "close_reason_code",
            "close_reason",
            "created_at",
            "closed_at",
        ),
    )

    class Meta:
        verbose_name_plural = "opportunities"
        indexes = [
            # A rep's queue of open expansions; the funnel report's expansions by creation date.
            models.Index(fields=["kind", "status", "created_at"], name="opportunity_kind_status_idx"),
        ]

    def __str__(self) -> str:
        return f"Opportunity for lead {self.lead_id} ({self.status})"


class SalesRepProfile(models.Model):
    """Routing facts about a sales rep: away, capacity, manager, territory."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rep_profile")
    is_away = models.BooleanField(default=False)
    capacity = models.PositiveIntegerField(default=100, help_text="Most open MQLs this rep holds at once.")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Countries or regions (``leads.territories``): leads from there go round-robin among their reps.
    territories = models.JSONField(default=list, blank=True)
    # Company-size bands (``leads.territories.SIZE_BANDS``) this rep takes; empty: any size.
    company_sizes = models.JSONField(default=list, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Rep profile of {self.user}"


class ImportJob(TimeStampedModel):
    class Status(models.TextChoices):
        # Uploaded from the dashboard, waiting for its column mapping; never run by a worker.
        DRAFT = "draft"
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/")
    original_name = models.CharField(max_length=300, blank=True, default="")
    mapping = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=100, default="import")
    # Applied to every lead of the file (a trade-show list is an event).
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.IMPORT)
    campaign = models.CharField(max_length=200, blank=True, default="")
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.status})"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    ERASED = "erased", "Erased"
    MANUAL = "manual", "Added by hand"


class Suppression(models.Model):
    """An address no marketing email may go to, whatever its lead row says (or whether one exists).

    Only a keyed hash of the normalised address is stored (HMAC-SHA256, key derived from
    SECRET_KEY: see ``leads.services.suppression``), so an erased person is not kept in clear;
    ``hint`` is a masked form (``j***@example.com``) for people to recognise, blank once erased.
    """

    # Every send looks addresses up by hash (unique: the one index it needs).
    email_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=254, blank=True, default="")
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.hint or '(erased address)'}: {self.reason}"


class Segment(TimeStampedModel):
    """A named set of leads. A *smart* segment is a saved filter (``definition``: ``{"match":
    "all"|"any", "conditions": [...]}``, see :mod:`leads.segments`) whose members are computed by
    one query whenever asked; a *static* list holds the leads added to it by hand or from a CSV
    (:class:`SegmentMember`)."""

    class Kind(models.TextChoices):
        SMART = "smart", "Smart (saved filter)"
        STATIC = "static", "Static list"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SMART)
    definition = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A lead on a static list."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "lead"], name="segment_member_uniq")]
        indexes = [
            # The lead page's "lists this lead is on".
            models.Index(fields=["lead"], name="segment_member_lead_idx"),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} on list {self.segment_id}"


class TrackedSite(TimeStampedModel):
    """A website that runs our tracking script (``static/js/lf-track.js``). Its public key is in
    the page; only ``allowed_origins`` may post page views for it (CORS and the page URL)."""

    name = models.CharField(max_length=200)
    public_key = models.CharField(max_length=40, unique=True)
    allowed_origins = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


class Visitor(models.Model):
    """One browser on one site (the script's first-party cookie), and the lead it turned out to be
    once identified (a form submitted with its id, or a tracked email link followed)."""

    site = models.ForeignKey(TrackedSite, on_delete=models.CASCADE, related_name="visitors")
    key = models.CharField(max_length=64)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="visitors")
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    identified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "key"], name="visitor_site_key_uniq")]
        indexes = [
            # Identification by the id a form carries (any site of the account).
            models.Index(fields=["key"], name="visitor_key_idx"),
            # Retention: anonymous visitors not seen for a while.
            models.Index(fields=["last_seen_at"], name="visitor_anon_seen_idx", condition=Q(lead__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"visitor {self.key} on site {self.site_id}"


class AnonymousPageView(models.Model):
    """A page view of a visitor not identified yet. On identification it becomes the lead's
    ``page_view`` interaction (and is deleted here); otherwise it is deleted after
    ``RETENTION_ANONYMOUS_DAYS``."""

    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="page_views")
    occurred_at = models.DateTimeField(default=timezone.now)
    url = models.CharField(max_length=2000)
    title = models.CharField(max_length=300, blank=True, default="")
    referrer = models.CharField(max_length=2000, blank=True, default="")
    utm = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # Identification: a visitor's views, oldest first.
            models.Index(fields=["visitor", "occurred_at"], name="anon_view_visitor_idx"),
            # Retention sweep.
            models.Index(fields=["occurred_at"], name="anon_view_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.url} by visitor {self.visitor_id}"

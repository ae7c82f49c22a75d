"""Scoring records: rules (data, edited by marketers), the single settings row,
the explainable ledger of contributions, per-(lead, rule) running totals and
full-recompute jobs.

The rule *logic* lives in :mod:`scoring.rules` (pure functions); these models
only hold the data.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadfunnel.models import TimeStampedModel
from leadfunnel.privacy import PersonalData

from .defaults import DISPOSABLE_DOMAINS, FREE_MAIL_DOMAINS, ROLE_ACCOUNT_PREFIXES


class Dimension(models.TextChoices):
    FIT = "fit", "Fit (who they are)"
    ENGAGEMENT = "engagement", "Engagement (what they did)"


class RuleSource(models.TextChoices):
    PROFILE = "profile", "Profile field"
    INTERACTION = "interaction", "Interaction"


class ScoringRule(TimeStampedModel):
    """One line of the scoring agreement between marketing and sales.

    Profile rules: ``field`` + ``operator`` + ``value`` over the lead's profile
    (including derived fields, see :data:`scoring.rules.PROFILE_FIELDS`).
    Interaction rules: ``interaction_type`` and optionally ``property`` +
    ``operator`` + ``value`` over the interaction's properties. ``points`` may be
    negative; ``max_points`` caps what one lead can get from the rule (same sign
    as ``points``); ``half_life_days`` makes engagement points decay.
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    dimension = models.CharField(max_length=20, choices=Dimension.choices, default=Dimension.ENGAGEMENT)
    source = models.CharField(max_length=20, choices=RuleSource.choices)
    field = models.CharField(max_length=100, blank=True, default="")
    operator = models.CharField(max_length=20, blank=True, default="")
    value = models.JSONField(null=True, blank=True)
    interaction_type = models.CharField(max_length=40, blank=True, default="")
    property = models.CharField(max_length=100, blank=True, default="")
    points = models.FloatField(default=0)
    # form_submit rules: take the points from the submitted Form's channel_weight instead.
    use_channel_weight = models.BooleanField(default=False)
    max_points = models.FloatField(null=True, blank=True)
    half_life_days = models.FloatField(null=True, blank=True)
    blocks_mql = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    # Default rules shipped with LeadFunnel carry a stable key (editable like any other rule).
    builtin_key = models.CharField(max_length=60, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


def _default_required_fields() -> list[str]:
    return ["first_name", "last_name", "title"]


def _default_pql_rule() -> dict:
    return {
        "enabled": True,
        "trial_type": "trial_started",
        "usage_type": "product_usage",
        "min_usage": 5,
        "within_days": 14,
    }


def _default_free_mail() -> list[str]:
    return list(FREE_MAIL_DOMAINS)


def _default_disposable() -> list[str]:
    return list(DISPOSABLE_DOMAINS)


def _default_role_prefixes() -> list[str]:
    return list(ROLE_ACCOUNT_PREFIXES)


class ScoringSettings(models.Model):
    """The single settings row (pk=1). Read it with ``scoring.selectors.scoring_settings_get``.

    ``version`` is bumped on every rule or settings change; the per-process rule
    cache is keyed by it, and a full recompute records the version it computed.
    """

    SINGLETON_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_PK, editable=False)
    mql_threshold = models.PositiveSmallIntegerField(default=60)
    sales_ready_threshold = models.PositiveSmallIntegerField(null=True, blank=True, default=80)
    required_profile_fields = models.JSONField(default=_default_required_fields, blank=True)
    sla_hours = models.PositiveIntegerField(default=24)
    pql_rule = models.JSONField(default=_default_pql_rule, blank=True)
    free_mail_domains = models.JSONField(default=_default_free_mail, blank=True)
    disposable_domains = models.JSONField(default=_default_disposable, blank=True)
    role_account_prefixes = models.JSONField(default=_default_role_prefixes, blank=True)
    competitor_domains = models.JSONField(default=list, blank=True)
    fit_weight = models.PositiveSmallIntegerField(default=50)
    engagement_weight = models.PositiveSmallIntegerField(default=50)
    version = models.PositiveIntegerField(default=1)
    defaults_installed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "scoring settings"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="scoring_settings_singleton")]

    def __str__(self) -> str:
        return f"Scoring settings (v{self.version})"


class LeadRuleTotal(models.Model):
    """What one rule has given one lead so far: the running totals that let the
    incremental path enforce caps and decay without re-reading the history.

    ``raw_points`` is the uncapped sum (caps are enforced against it),
    ``points`` what was awarded (capped, not decayed), and ``value`` the awarded
    points decayed to ``value_at`` (equal to ``points`` for rules without decay).
    """

    # One index: the unique (lead, rule). Every reader goes by lead (the score API, the dashboard,
    # the incremental path, the recompute's range deletes); the decay sweep walks it in lead order
    # with the rule ids as an index condition, and deleting a rule (rare) scans the table once.
    # Every further index costs on the recompute's bulk writes.
    # Derived data, rebuilt by any recompute: no database FK constraints (their per-row checks
    # dominate the bulk writes); deletes cascade in Django (lead) or in services.rule_delete (rule).
    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    # DO_NOTHING: deleting a rule removes its rows with one set-based DELETE (services.rule_delete).
    rule = models.ForeignKey(
        ScoringRule, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    dimension = models.CharField(max_length=20, choices=Dimension.choices)
    matches = models.PositiveIntegerField(default=0)
    raw_points = models.FloatField(default=0)
    points = models.FloatField(default=0)
    value = models.FloatField(default=0)
    value_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "rule"], name="lead_rule_total_uniq")]

    def __str__(self) -> str:
        return f"lead {self.lead_id} rule {self.rule_id}: {self.points}"


class ScoreContribution(models.Model):
    """The explainable ledger: one row per (rule, interaction) that gave points,
    and one row per matching profile rule (replaced when the profile changes)."""

    # The ledger is the largest table the recompute writes (about one row per scored interaction),
    # so it carries only the index the score API reads: (lead, -at), which also serves lead_id.
    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="score_contributions", db_index=False, db_constraint=False
    )
    # Rule deletion (rare) removes rows by rule_id with one DELETE (a scan, no index to maintain).
    rule = models.ForeignKey(
        ScoringRule, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    dimension = models.CharField(max_length=20, choices=Dimension.choices)
    source = models.CharField(max_length=20, choices=RuleSource.choices)
    points = models.FloatField()
    reason = models.CharField(max_length=500)
    at = models.DateTimeField(default=timezone.now)
    # Interactions are append-only and leave only with their lead, whose deletion cascades here.
    interaction = models.ForeignKey(
        "leads.Interaction",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    field = models.CharField(max_length=100, blank=True, default="")

    # Exported with the score. An erasure keeps the points and drops the profile values quoted in
    # profile reasons ("title is '…'"), a rewrite the leads app's erasure does in SQL.
    personal_data = PersonalData(
        kind="score_contributions",
        export=("rule_id", "rule__name", "dimension", "source", "points", "reason", "at", "interaction_id"),
        order_by=("-at", "-id"),
    )

    class Meta:
        indexes = [
            # The score API: a lead's contributions, newest first; recompute deletes by lead range.
            models.Index(fields=["lead", "-at"], name="contribution_lead_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.points:+g} to lead {self.lead_id} ({self.reason})"


class RecomputeJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        SUPERSEDED = "superseded"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=200, blank=True, default="")
    settings_version = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    # Resumable: the highest lead id finished; a restarted task continues after it. A parallel run
    # splits the leads after it into RecomputeRange rows, each with its own progress.
    last_lead_id = models.BigIntegerField(default=0)
    promoted = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Recompute {self.pk} ({self.status} {self.done}/{self.total})"


class RecomputeRange(models.Model):
    """One slice of a full recompute that several workers run at once: the leads with
    ``after_lead_id < id <= until_lead_id`` (no upper bound when null). Resumable on its own:
    ``last_lead_id`` is the highest lead finished; ``finished_at`` is set when the slice is done.
    The job's ``done`` counts the leads of all its slices."""

    job = models.ForeignKey(RecomputeJob, on_delete=models.CASCADE, related_name="ranges")
    after_lead_id = models.BigIntegerField()
    until_lead_id = models.BigIntegerField(null=True, blank=True)
    last_lead_id = models.BigIntegerField()
    done = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "after_lead_id"]

    def __str__(self) -> str:
        return f"Recompute {self.job_id} leads ({self.after_lead_id}, {self.until_lead_id or '…'}]"


class PendingScore(models.Model):
    """An event stored but not scored yet: the deferred scoring queue (``SCORING_DEFERRED``).

    The request that stores an interaction adds its row in the same statement; a worker claims
    rows in id order (``FOR UPDATE SKIP LOCKED``), scores them and deletes them in one
    transaction, so a crash puts them back and nothing is scored twice. ``profile``: the lead's
    profile changed too (its fit rules are evaluated again). No foreign keys: the queue is written
    on the hottest path and partition-friendly tables refer to it by id.
    """

    lead_id = models.BigIntegerField()
    interaction_id = models.BigIntegerField(null=True, blank=True)
    profile = models.BooleanField(default=False)
    queued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"lead {self.lead_id}: interaction {self.interaction_id or '-'} waiting to be scored"


# Predictive scoring and back-testing records live in scoring/predictive/models.py; importing them
# here makes them part of the scoring app (and its migrations).
from .predictive.models import BacktestJob, PredictiveModel  # noqa: E402, F401

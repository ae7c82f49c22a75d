"""Predictive scoring and back-testing records: trained models and back-test jobs.

Imported at the end of ``scoring/models.py``: that import is what registers them with the
scoring app (and its migrations), whose ``app_label`` and tables they keep.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

__all__ = ["BacktestJob", "PredictiveModel"]


class PredictiveModel(models.Model):
    """One training run. At most one row is ``active``: the model whose probabilities leads carry.

    The fitted model is kept as plain JSON (feature names, scaler, coefficients and
    the Platt calibration), so it is readable, versioned with the row and needs no
    unpickling of bytes from the database.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        TRAINING = "training"
        ACTIVE = "active"
        RETIRED = "retired"
        INSUFFICIENT_DATA = "insufficient_data"
        FAILED = "failed"

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    trained_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Training parameters: target stage, horizon, snapshot spacing, regularisation.
    params = models.JSONField(default=dict, blank=True)
    # auc, precision_at_decile, base_rate, brier, n_train, n_test, outcomes {positives, negatives}, ...
    metrics = models.JSONField(default=dict, blank=True)
    feature_names = models.JSONField(default=list, blank=True)
    # {"mean": [...], "scale": [...], "coef": [...], "intercept": x, "platt_a": a, "platt_b": b, "vocab": {...}}
    coefficients = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True, default="")
    leads_scored = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_predictive_model"
            ),
        ]

    def __str__(self) -> str:
        return f"Predictive model v{self.version} ({self.status})"


class BacktestJob(models.Model):
    """A replay of recorded interactions under a candidate rule set, compared with the current one."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # {"candidate": {"rules": [...], "settings": {...}}, "since": iso, "until": iso}
    params = models.JSONField(default=dict)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    # Set when a marketer applied the candidate to the live rules (through the scoring services).
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Back-test {self.pk} ({self.status})"

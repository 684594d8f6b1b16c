"""Operator economics: the operator's settings (drift threshold, dunning, the
upstream budget backstop), reconciliation records against the upstream's own
usage and costs, once-only operator notices, and each workspace's dunning state."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from accounts.models import Workspace
from accounts.tenancy import WorkspaceScopedManager
from config import clock

__all__ = [
    "BackstopPolicy",
    "DunningState",
    "EconomicsSettings",
    "OperatorNotice",
    "ReconciliationLine",
    "ReconciliationRun",
    "ReconciliationStatus",
]

MONEY = {"max_digits": 20, "decimal_places": 8}


class BackstopPolicy(models.TextChoices):
    ALERT = "alert", "Alert operators only"
    REFUSE = "refuse", "Refuse new feature calls (503 upstream_unavailable)"


class EconomicsSettings(models.Model):
    """Operator settings (one row, edited in admin)."""

    drift_threshold_percent = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(0)],
        help_text="Reconciliation drift (in %) above which operators are emailed",
    )
    operator_emails = models.TextField(
        blank=True,
        help_text="Where operator alerts go, one address per line (blank: every active "
        "staff user with an email)",
    )
    past_due_overage_grace_days = models.PositiveIntegerField(
        default=3,
        help_text="Days a past_due workspace keeps metered overage before only its "
        "included tokens remain",
    )
    dunning_reminder_days = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Days after the first failed payment that the reminder email goes out",
    )
    upstream_monthly_budget = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="USD per calendar month for the org's upstream spend (blank: no backstop)",
    )
    backstop_policy = models.CharField(
        max_length=10, choices=BackstopPolicy.choices, default=BackstopPolicy.ALERT
    )
    # Set by the backstop check when the month's ledger cost passed the budget
    # under the "refuse" policy: "YYYY-MM" (empty: calls flow).
    backstop_tripped_month = models.CharField(max_length=7, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "economics settings"

    def __str__(self) -> str:
        return "Economics settings"

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> EconomicsSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class ReconciliationStatus(models.TextChoices):
    MATCHED = "matched", "Matched"
    DRIFT = "drift", "Drift over the threshold"
    SKIPPED = "skipped", "Skipped (no admin key)"
    FAILED = "failed", "Failed to fetch"


class ReconciliationRun(models.Model):
    """One day compared with the upstream organization's usage and costs."""

    day = models.DateField(unique=True)
    status = models.CharField(max_length=10, choices=ReconciliationStatus.choices)
    grouped_by = models.CharField(max_length=60, help_text="The keys compared, e.g. day x model")
    our_requests = models.BigIntegerField(default=0)
    their_requests = models.BigIntegerField(default=0)
    our_tokens = models.BigIntegerField(default=0)
    their_tokens = models.BigIntegerField(default=0)
    ledger_cost = models.DecimalField(**MONEY, default=Decimal(0))
    upstream_cost = models.DecimalField(**MONEY, null=True, blank=True)
    max_drift_percent = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    threshold_percent = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal(1))
    flagged_events = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.get_status_display()}"

    @property
    def cost_scale(self) -> Decimal | None:
        """Upstream cost ÷ ledger cost (how much to scale our cost estimate)."""
        if self.upstream_cost is None or not self.ledger_cost:
            return None
        return self.upstream_cost / self.ledger_cost


class ReconciliationLine(models.Model):
    """Ours vs theirs for one day x model (x the upstream key/project)."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="lines")
    model = models.CharField(max_length=100)
    upstream_scope = models.CharField(max_length=100, blank=True, help_text="key or project id")
    our_requests = models.BigIntegerField(default=0)
    their_requests = models.BigIntegerField(default=0)
    our_input_tokens = models.BigIntegerField(default=0)
    their_input_tokens = models.BigIntegerField(default=0)
    our_cached_input_tokens = models.BigIntegerField(default=0)
    their_cached_input_tokens = models.BigIntegerField(default=0)
    our_output_tokens = models.BigIntegerField(default=0)
    their_output_tokens = models.BigIntegerField(default=0)
    ledger_cost = models.DecimalField(**MONEY, default=Decimal(0))
    upstream_cost = models.DecimalField(**MONEY, null=True, blank=True)
    drift_percent = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))

    class Meta:
        ordering = ["-drift_percent", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "model", "upstream_scope"], name="one_reconciliation_line"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run.day} {self.model}: {self.drift_percent}%"

    def differences(self) -> dict[str, int]:
        return {
            name: getattr(self, f"their_{name}") - getattr(self, f"our_{name}")
            for name in ("requests", "input_tokens", "cached_input_tokens", "output_tokens")
        }


class OperatorNotice(models.Model):
    """An operator email sent at most once per (kind, key): a day's drift alert,
    a month's 80 %/100 % budget alert, 'no admin key'."""

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=60)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="one_operator_notice")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class DunningState(models.Model):
    """The access decision for a subscription that isn't in good standing, made
    when Stripe's state is mirrored (never on the hot path): when it became
    past_due (for the reminder and the overage grace period) and whether
    feature calls are refused (402 payment_overdue). Read with the billing row
    in the limits lookup's one query."""

    subscription = models.OneToOneField(
        "billing.Subscription", on_delete=models.CASCADE, related_name="dunning"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20)
    past_due_since = models.DateTimeField(null=True, blank=True)
    refused = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=clock.now)

    objects = WorkspaceScopedManager()

    def __str__(self) -> str:
        return f"{self.workspace}: {self.status}{' (refused)' if self.refused else ''}"

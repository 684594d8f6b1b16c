"""Per-person email preferences and per-workspace privacy policy (MFA rule,
content retention, scheduled deletion). Separate tables so accounts/models.py
stays as it is."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from config import clock


class EmailKind(models.TextChoices):
    USAGE_ALERTS = "usage_alerts", "Usage alerts"
    INVOICES = "invoices", "Invoices and receipts"
    PRODUCT = "product", "Product news"
    # Password, MFA, new login, account deletion: always sent.
    SECURITY = "security", "Security (always sent)"
    # Invitations and other mails a person asked for by acting: always sent.
    TRANSACTIONAL = "transactional", "Transactional (always sent)"


OPTIONAL_KINDS = (EmailKind.USAGE_ALERTS, EmailKind.INVOICES, EmailKind.PRODUCT)


class NotificationPreference(models.Model):
    """What optional emails a person wants; no row = the defaults (all on)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    usage_alerts = models.BooleanField(default=True)
    invoices = models.BooleanField(default=True)
    product = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"email preferences of user {self.user_id}"


class WorkspacePolicy(models.Model):
    """A workspace's privacy and security choices, and its deletion state."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="policy"
    )
    require_mfa = models.BooleanField(default=False)
    # None: keep prompts and answers until someone deletes them.
    content_retention_days = models.PositiveIntegerField(null=True, blank=True)
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deletion_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    subscription_cancelled_now = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Records of account (invoices, consents, ledger money) kept until then.
    retained_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name_plural = "workspace policies"

    def __str__(self) -> str:
        return f"policy of workspace {self.workspace_id}"

    @property
    def deletion_pending(self) -> bool:
        return self.deletion_due_at is not None and self.deleted_at is None

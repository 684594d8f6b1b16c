"""Billing data: tiers (operator-defined), each workspace's subscription mirror,
Stripe events received, immutable upgrade consents, invoices mirrored from
Stripe, the metered-overage outbox and once-per-period notices."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from accounts.models import Workspace
from accounts.tenancy import WorkspaceQuerySet, WorkspaceScopedManager
from config import clock

FEATURE_CHOICES = [("summarize", "Summarize"), ("extract", "Extract"), ("chat", "Chat")]
FEATURE_SLUGS = frozenset(slug for slug, _ in FEATURE_CHOICES)


class OveragePolicy(models.TextChoices):
    STOP = "stop", "Stop and ask before upgrading"
    METERED = "metered", "Metered overage up to a spend cap"


class TierQuerySet(models.QuerySet):
    def public(self) -> TierQuerySet:
        return self.filter(is_public=True, is_archived=False)


class Tier(models.Model):
    """A plan customers can be on. Plans are data (STYLE.md 8): code asks
    `billing.limits.workspace_limits`, never `if plan == "pro"`."""

    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=40, unique=True)
    description = models.CharField(max_length=200, blank=True)
    monthly_price = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="usd")
    included_tokens = models.PositiveBigIntegerField(help_text="Tokens (input + output) per period")
    rpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: no limit")
    tpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: no limit")
    features = models.JSONField(
        default=list, blank=True, help_text='Enabled feature slugs, e.g. ["summarize", "chat"]'
    )
    next_tier = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    overage_policy = models.CharField(
        max_length=10, choices=OveragePolicy.choices, default=OveragePolicy.STOP
    )
    overage_price_per_million = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    overage_spend_cap = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Default overage spend cap per period for a workspace (blank: no cap)",
    )
    is_public = models.BooleanField(default=True)
    is_archived = models.BooleanField(default=False)
    sort_order = models.PositiveIntegerField(default=0)
    # Stripe catalog (written by the admin action "Sync to Stripe").
    stripe_product_id = models.CharField(max_length=100, blank=True)
    stripe_price_id = models.CharField(max_length=100, blank=True)
    stripe_overage_price_id = models.CharField(max_length=100, blank=True)
    stripe_synced_at = models.DateTimeField(null=True, blank=True)

    objects = TierQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "monthly_price", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = set(self.features or []) - FEATURE_SLUGS
        if unknown:
            raise ValidationError({"features": f"Unknown features: {', '.join(sorted(unknown))}"})
        if self.next_tier_id and self.next_tier_id == self.pk:
            raise ValidationError({"next_tier": "A tier can't be its own next tier."})
        self.currency = self.currency.lower()

    @property
    def is_free(self) -> bool:
        return self.monthly_price == 0

    @property
    def is_metered(self) -> bool:
        return self.overage_policy == OveragePolicy.METERED

    @property
    def lookup_key(self) -> str:
        """Stripe Price lookup key: moves to the newest Price when the fee changes."""
        return f"tollgate_{self.slug}_monthly"

    @property
    def overage_lookup_key(self) -> str:
        return f"tollgate_{self.slug}_overage"


class SubscriptionStatus(models.TextChoices):
    FREE = "free", "Free (no subscription)"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"


# Statuses in which the paid tier's quota applies.
PAID_STATUSES = frozenset({"active", "trialing", "past_due"})


class Subscription(models.Model):
    """The workspace's billing state, mirrored from Stripe. One row per
    workspace (created on first need); it is also the row that upgrades lock."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="billing_subscription"
    )
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.FREE
    )
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_item_id = models.CharField(max_length=100, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # An upgrade Stripe holds until its payment succeeds (pending_if_incomplete).
    pending_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A downgrade that takes effect when the current period ends.
    scheduled_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scheduled_from = models.DateTimeField(null=True, blank=True)
    # An open Checkout for a first paid tier: a second consent reuses it, so two
    # admins can't start two subscriptions.
    checkout_session_id = models.CharField(max_length=100, blank=True)
    checkout_url = models.URLField(max_length=1000, blank=True)
    checkout_expires_at = models.DateTimeField(null=True, blank=True)
    # Per-workspace override of the tier's overage spend cap (blank: the tier's).
    overage_spend_cap = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceScopedManager()

    def __str__(self) -> str:
        return f"{self.workspace} on {self.tier or 'free'} ({self.status})"

    @property
    def is_paid(self) -> bool:
        return bool(self.stripe_subscription_id) and self.status in PAID_STATUSES

    @property
    def pending_upgrade(self) -> Tier | None:
        """An upgrade waiting for Stripe: a pending update's payment, or an open Checkout."""
        if self.pending_tier_id is None:
            return None
        if self.is_paid and not self.checkout_session_id:
            return self.pending_tier
        open_checkout = self.checkout_expires_at and self.checkout_expires_at > clock.now()
        return self.pending_tier if open_checkout else None


class StripeEvent(models.Model):
    """Every webhook event, stored once by its Stripe id (the unique constraint is
    what makes replays harmless)."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField(default=False)
    stripe_created = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=clock.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ImmutableError(Exception):
    pass


class ConsentQuerySet(WorkspaceQuerySet):
    def update(self, **kwargs):
        raise ImmutableError("Consent records can't be changed.")

    def delete(self):
        raise ImmutableError("Consent records can't be deleted.")


class ConsentRecord(models.Model):
    """An explicit, recorded 'yes' to a pricier tier. Append-only: it is evidence
    of exactly what the person saw (price, included tokens, charge now, terms)."""

    # The record outlives a deleted workspace or person (kept as evidence).
    workspace = models.ForeignKey(Workspace, null=True, on_delete=models.SET_NULL, related_name="+")
    workspace_name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_email = models.EmailField()
    role = models.CharField(max_length=20)
    from_tier = models.ForeignKey(Tier, null=True, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    price_shown = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    included_tokens_shown = models.PositiveBigIntegerField()
    amount_due_now_shown = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    terms_version = models.CharField(max_length=40)
    terms_text = models.TextField()
    terms_sha256 = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=[("web", "Web"), ("api", "API")])
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    objects = models.Manager.from_queryset(ConsentQuerySet)()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        change = f"{self.from_tier or 'free'} → {self.to_tier}"
        return f"{self.user_email}: {change} ({self.created_at:%Y-%m-%d})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None or not self._state.adding:
            raise ImmutableError("Consent records can't be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Consent records can't be deleted.")


class OverageReport(models.Model):
    """Outbox: tokens past a metered tier's included amount, written right
    after the meter's recording transaction commits (or by the sweeper, if a
    crash came between) and sent to Stripe as a meter event whose identifier is
    the usage event's id (one report per event; resending never double-bills)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    usage_event_id = models.BigIntegerField(unique=True)
    tokens = models.PositiveBigIntegerField()
    stripe_customer_id = models.CharField(max_length=100)
    period_start = models.DateTimeField()
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.tokens} overage tokens for usage event {self.usage_event_id}"

    @property
    def identifier(self) -> str:
        return f"usage-{self.usage_event_id}"


class BillingNotice(models.Model):
    """A notice sent at most once per workspace, kind and period (usage alerts,
    'included tokens used up')."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)
    period_start = models.DateTimeField()
    created_at = models.DateTimeField(default=clock.now)

    objects = WorkspaceScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "period_start"], name="one_notice_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.workspace} ({self.period_start:%Y-%m-%d})"


from billing.models_economics import *  # noqa: E402,F403  (operator economics)
from billing.models_exports import ExportJob, ExportStatus  # noqa: E402,F401
from billing.models_invoices import (  # noqa: E402,F401  (the invoice mirror's own module)
    BillingDetails,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceEmail,
    InvoiceLine,
    InvoiceResync,
    InvoiceStatusChange,
)

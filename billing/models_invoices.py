"""The invoice mirror: Stripe is the document of record (DESIGN.md "The money
trail"); these rows are a complete, Decimal copy of its invoices, lines and
credit notes, plus what Tollgate adds (status history, the archived PDF, the
customer's billing details, the emails sent, the nightly drift report).

Field names are a contract with finance exports and revenue (economics): keep
them stable. Money is `DecimalField` in the currency's major unit, next to a
`currency`. Amounts follow Stripe's arithmetic:

    subtotal (Σ lines) - discount = net (total_excluding_tax); net + tax = total (gross)

Issued invoices and credit notes are never edited locally: only
`billing.services.invoices` (the sync, from a freshly retrieved Stripe object)
may write them — it saves with `from_stripe=True`.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.storage import storages
from django.db import models

from accounts.models import Workspace
from accounts.tenancy import WorkspaceScopedManager
from config import clock

MONEY = {"max_digits": 14, "decimal_places": 2}
# Stripe's unit_amount_decimal may carry fractions of a cent (per-token prices).
UNIT_PRICE = {"max_digits": 24, "decimal_places": 12}


class ImmutableInvoiceError(Exception):
    """A local write to an issued invoice or credit note (only the sync may write)."""


def invoice_pdf_storage():
    """The archive's storage: `STORAGES["invoices"]` when configured (e.g. S3 via
    django-storages), else the default storage (local files under MEDIA_ROOT)."""
    alias = getattr(settings, "TOLLGATE_INVOICE_STORAGE", "default")
    return storages[alias] if alias in settings.STORAGES else storages["default"]


def invoice_pdf_path(instance: Invoice, filename: str) -> str:
    return f"invoices/{instance.workspace_id}/{instance.stripe_invoice_id}.pdf"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


class StripeMirror(models.Model):
    """Rows the sync owns: a local save needs `from_stripe=True` once issued."""

    class Meta:
        abstract = True

    def save(self, *args, from_stripe: bool = False, **kwargs) -> None:
        if not from_stripe and self.pk is not None and self.is_issued():
            raise ImmutableInvoiceError(
                f"{type(self).__name__} {self} is issued: only the Stripe sync may change it."
            )
        super().save(*args, **kwargs)

    def is_issued(self) -> bool:
        return True


class Invoice(StripeMirror):
    """One Stripe invoice, complete."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    stripe_invoice_id = models.CharField(max_length=100, unique=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, db_index=True)
    number = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices, db_index=True)
    billing_reason = models.CharField(max_length=40, blank=True)
    collection_method = models.CharField(max_length=30, blank=True)
    # The customer as printed on the invoice (Stripe's snapshot at finalization).
    customer_legal_name = models.CharField(max_length=200, blank=True)
    customer_email = models.CharField(max_length=254, blank=True)
    customer_address = models.JSONField(default=dict, blank=True)
    customer_country = models.CharField(max_length=2, blank=True, db_index=True)
    customer_tax_id = models.CharField(max_length=64, blank=True)
    customer_tax_id_type = models.CharField(max_length=20, blank=True)
    # Money (major units of `currency`).
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**MONEY, default=0, help_text="Σ lines before discount and tax")
    discount = models.DecimalField(**MONEY, default=0)
    net = models.DecimalField(
        **MONEY, default=0, help_text="total_excluding_tax = subtotal - discount"
    )
    tax = models.DecimalField(**MONEY, default=0)
    total = models.DecimalField(**MONEY, help_text="gross = net + tax")
    amount_paid = models.DecimalField(**MONEY, default=0)
    amount_due = models.DecimalField(**MONEY, default=0)
    amount_remaining = models.DecimalField(**MONEY, default=0)
    credited_total = models.DecimalField(
        **MONEY, default=0, help_text="Σ credit notes (pre- and post-payment)"
    )
    # Stripe's own period fields (for subscription invoices: the previous period)…
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # …and the service period the lines cover (what finance calls the period).
    service_period_start = models.DateTimeField(null=True, blank=True)
    service_period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(help_text="Stripe's `created`")
    finalized_at = models.DateTimeField(null=True, blank=True, help_text="Issue date")
    due_date = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True)
    # Payment.
    payment_method_summary = models.CharField(max_length=100, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=100, blank=True)
    stripe_charge_id = models.CharField(max_length=100, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    # Links and the archive.
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    invoice_pdf = models.URLField(max_length=500, blank=True, help_text="Stripe's PDF URL")
    pdf_file = models.FileField(
        upload_to=invoice_pdf_path, storage=invoice_pdf_storage, blank=True, max_length=300
    )
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    pdf_archived_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number or self.stripe_invoice_id

    def is_issued(self) -> bool:
        return self.status != InvoiceStatus.DRAFT or bool(self.number)

    @property
    def gross(self):
        return self.total

    @property
    def has_pdf(self) -> bool:
        return bool(self.pdf_file)

    @staticmethod
    def sha256_of(content: bytes) -> str:
        return hashlib.sha256(content).hexdigest()


class InvoiceStatusChange(models.Model):
    """Status history: one row per status the invoice entered (draft → open →
    paid / void / uncollectible). `at` is Stripe's transition time when Stripe
    gives one, otherwise when the sync saw it."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="status_history")
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices)
    at = models.DateTimeField()
    source = models.CharField(max_length=20, default="webhook")  # webhook | resync | admin

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "status"], name="one_row_per_invoice_status")
        ]

    def __str__(self) -> str:
        return f"{self.invoice} → {self.status} at {self.at:%Y-%m-%d %H:%M}"


class LineKind(models.TextChoices):
    PLAN_FEE = "plan_fee", "Plan fee"
    METERED_OVERAGE = "metered_overage", "Metered overage"
    PRORATION = "proration", "Proration"
    OTHER = "other", "Other"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    stripe_line_id = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=LineKind.choices, db_index=True)
    description = models.CharField(max_length=500, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    quantity = models.DecimalField(max_digits=24, decimal_places=6, default=0)
    currency = models.CharField(max_length=3)
    unit_amount = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    amount = models.DecimalField(**MONEY, help_text="Before discount and tax")
    discount = models.DecimalField(**MONEY, default=0)
    tax = models.DecimalField(**MONEY, default=0)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    proration = models.BooleanField(default=False)
    tier = models.ForeignKey(
        "billing.Tier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stripe_price_id = models.CharField(max_length=100, blank=True)
    stripe_product_id = models.CharField(max_length=100, blank=True)
    stripe_subscription_item_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["invoice", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "stripe_line_id"], name="one_row_per_invoice_line"
            )
        ]

    def __str__(self) -> str:
        return f"{self.description or self.kind} ({self.amount} {self.currency})"

    @property
    def net(self):
        return self.amount - self.discount


class CreditNoteStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    VOID = "void", "Void"


class CreditNoteReason(models.TextChoices):
    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    ORDER_CHANGE = "order_change", "Order change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", "Product unsatisfactory"


class CreditNote(StripeMirror):
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    stripe_credit_note_id = models.CharField(max_length=100, unique=True)
    number = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=CreditNoteStatus.choices)
    type = models.CharField(max_length=20, blank=True)  # pre_payment | post_payment
    reason = models.CharField(max_length=30, choices=CreditNoteReason.choices, blank=True)
    memo = models.TextField(blank=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**MONEY)
    discount = models.DecimalField(**MONEY, default=0)
    tax = models.DecimalField(**MONEY, default=0)
    total = models.DecimalField(**MONEY, help_text="Stripe's `amount` (gross)")
    refund_amount = models.DecimalField(**MONEY, default=0)
    credit_amount = models.DecimalField(**MONEY, default=0, help_text="To the customer balance")
    out_of_band_amount = models.DecimalField(**MONEY, default=0)
    stripe_refund_id = models.CharField(max_length=100, blank=True)
    pdf_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(help_text="Stripe's `created` (issue date)")
    voided_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(default=clock.now)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number or self.stripe_credit_note_id


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    stripe_line_id = models.CharField(max_length=100)
    invoice_line = models.ForeignKey(
        InvoiceLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=30, blank=True)  # invoice_line_item | custom_line_item
    description = models.CharField(max_length=500, blank=True)
    quantity = models.DecimalField(max_digits=24, decimal_places=6, default=0)
    currency = models.CharField(max_length=3)
    unit_amount = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    amount = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY, default=0)

    class Meta:
        ordering = ["credit_note", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "stripe_line_id"], name="one_row_per_credit_note_line"
            )
        ]

    def __str__(self) -> str:
        return f"{self.description} ({self.amount} {self.currency})"


class BillingDetails(models.Model):
    """What the customer wants on its invoices; synced to the Stripe customer
    (name, address, email, tax_ids) so Stripe prints it on the next invoice."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="billing_details"
    )
    legal_name = models.CharField(max_length=200, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    tax_id = models.CharField(max_length=64, blank=True, help_text="Normalized, e.g. DE123456789")
    tax_id_type = models.CharField(max_length=20, blank=True, help_text="Stripe's type: eu_vat, …")
    invoice_email = models.EmailField(blank=True)
    stripe_tax_id_id = models.CharField(max_length=100, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceScopedManager()

    def __str__(self) -> str:
        return f"Billing details of {self.workspace}"


class InvoiceEmailKind(models.TextChoices):
    READY = "ready", "Invoice is ready"
    RECEIPT = "receipt", "Receipt"


class InvoiceEmail(models.Model):
    """An invoicing email sent once per invoice and kind (the unique row is the
    claim: a second worker's insert fails and it sends nothing)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=20, choices=InvoiceEmailKind.choices)
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invoice", "kind"], name="one_email_per_invoice_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.invoice}"


class InvoiceResync(models.Model):
    """One nightly re-sync run and what it repaired (visible in admin)."""

    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    invoices_checked = models.PositiveIntegerField(default=0)
    credit_notes_checked = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    # [{"object": "invoice", "id": "in_…", "fields": {"status": ["open", "paid"]}}, …]
    repairs = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"Invoice re-sync {self.started_at:%Y-%m-%d %H:%M}: {self.repaired} repaired"

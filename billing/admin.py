from django import forms
from django.contrib import admin, messages

from billing import stripe_api
from billing.models import (
    FEATURE_CHOICES,
    BillingNotice,
    ConsentRecord,
    OverageReport,
    StripeEvent,
    Subscription,
    Tier,
)
from billing.services.catalog import tier_sync_to_stripe
from config.errors import ApiError


class TierForm(forms.ModelForm):
    features = forms.MultipleChoiceField(
        choices=FEATURE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Tier
        fields = [
            "name",
            "slug",
            "description",
            "monthly_price",
            "currency",
            "included_tokens",
            "rpm_limit",
            "tpm_limit",
            "features",
            "next_tier",
            "overage_policy",
            "overage_price_per_million",
            "overage_spend_cap",
            "is_public",
            "is_archived",
            "sort_order",
        ]
        help_texts = {
            "is_public": "Shown on the pricing page and offered for upgrades. A paid tier "
            "can be public only once it has a Stripe price (the list action "
            "“Create/update the Stripe Product and Prices”).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.initial.setdefault("is_public", False)  # public after the Stripe sync

    def clean(self):
        data = super().clean()
        paid = (data.get("monthly_price") or 0) > 0
        synced = bool(self.instance.pk and self.instance.stripe_price_id)
        if data.get("is_public") and paid and not synced:
            self.add_error(
                "is_public",
                "This paid tier has no Stripe price yet, so nobody could buy it. Save it "
                "without “public”, select it in the tier list and run “Create/update the "
                "Stripe Product and Prices”, then make it public.",
            )
        return data


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    form = TierForm
    list_display = [
        "name",
        "slug",
        "monthly_price",
        "currency",
        "included_tokens",
        "overage_policy",
        "next_tier",
        "is_public",
        "is_archived",
        "sort_order",
        "stripe_price_id",
    ]
    list_filter = ["is_public", "is_archived", "overage_policy"]
    list_editable = ["sort_order"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "stripe_product_id",
        "stripe_price_id",
        "stripe_overage_price_id",
        "stripe_synced_at",
    ]
    actions = ["sync_to_stripe"]
    # The Stripe ids appear once, read-only, in their own section.
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "sort_order"]}),
        (
            "Price and limits",
            {"fields": ["monthly_price", "currency", "included_tokens", "rpm_limit", "tpm_limit"]},
        ),
        ("Features and upgrades", {"fields": ["features", "next_tier"]}),
        (
            "Past the included tokens",
            {"fields": ["overage_policy", "overage_price_per_million", "overage_spend_cap"]},
        ),
        ("Visibility", {"fields": ["is_public", "is_archived"]}),
        (
            "Stripe (set by the sync action)",
            {
                "fields": [
                    "stripe_product_id",
                    "stripe_price_id",
                    "stripe_overage_price_id",
                    "stripe_synced_at",
                ]
            },
        ),
    ]

    @admin.action(description="Create/update the Stripe Product and Prices")
    def sync_to_stripe(self, request, queryset):
        if not stripe_api.is_configured():
            self.message_user(
                request, "Stripe is not configured (STRIPE_SECRET_KEY).", messages.ERROR
            )
            return
        for tier in queryset:
            try:
                tier = tier_sync_to_stripe(tier=tier)
            except (ApiError, Exception) as exc:  # show the operator, don't 500
                self.message_user(request, f"{tier}: {exc}", messages.ERROR)
                continue
            price = tier.stripe_price_id or "no price (free tier)"
            self.message_user(request, f"{tier}: product {tier.stripe_product_id}, {price}")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "workspace",
        "tier",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "pending_tier",
        "scheduled_tier",
    ]
    list_filter = ["status", "tier"]
    search_fields = ["workspace__name", "stripe_customer_id", "stripe_subscription_id"]
    readonly_fields = [
        "workspace",
        "tier",
        "status",
        "stripe_customer_id",
        "stripe_subscription_id",
        "stripe_item_id",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "pending_tier",
        "scheduled_tier",
        "scheduled_from",
        "synced_at",
    ]

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "workspace",
        "user_email",
        "from_tier",
        "to_tier",
        "price_shown",
        "amount_due_now_shown",
        "terms_version",
        "channel",
        "ip_address",
    ]
    list_filter = ["to_tier", "channel", "terms_version"]
    search_fields = ["workspace__name", "user_email", "terms_sha256"]
    date_hierarchy = "created_at"


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "attempts", "last_error"]
    list_filter = ["type", "processed_at"]
    search_fields = ["event_id"]
    actions = ["reprocess"]

    @admin.action(description="Process again (handlers re-fetch from Stripe)")
    def reprocess(self, request, queryset):
        from billing.tasks import process_stripe_event

        ids = list(queryset.values_list("pk", flat=True))
        StripeEvent.objects.filter(pk__in=ids).update(processed_at=None)
        for pk in ids:
            process_stripe_event.delay(pk)
        self.message_user(request, f"Queued {len(ids)} event(s).")


@admin.register(OverageReport)
class OverageReportAdmin(ReadOnlyAdmin):
    list_display = ["usage_event_id", "workspace", "tokens", "created_at", "sent_at", "attempts"]
    list_filter = ["sent_at"]


@admin.register(BillingNotice)
class BillingNoticeAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "kind", "period_start", "created_at"]


from billing import admin_economics  # noqa: E402,F401,I001  (operator economics)
from billing import admin_exports  # noqa: E402, F401  (export jobs, read-only)
from billing.admin_invoices import (  # noqa: E402,F401  (the invoice mirror's admin)
    CreditNoteAdmin,
    InvoiceAdmin,
    InvoiceResyncAdmin,
)

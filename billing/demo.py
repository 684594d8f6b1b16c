"""Demo tiers for the run command: Free → Pro → Team (idempotent)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from billing import stripe_api
from billing.models import OveragePolicy, Tier

DEMO_TIERS = [
    {
        "slug": "free",
        "name": "Free",
        "description": "Try Summarize and Extract. No card needed (Chat comes with Pro).",
        "monthly_price": Decimal("0"),
        "included_tokens": 20_000,
        "rpm_limit": 20,
        "tpm_limit": 40_000,
        "features": ["summarize", "extract"],
        "sort_order": 10,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "description": "For individuals and small teams using Tollgate daily.",
        "monthly_price": Decimal("29.00"),
        "included_tokens": 2_000_000,
        "rpm_limit": 120,
        "tpm_limit": 400_000,
        "features": ["summarize", "extract", "chat"],
        "sort_order": 20,
    },
    {
        "slug": "team",
        "name": "Team",
        "description": "Higher limits; pay as you go past the included tokens, up to a cap.",
        "monthly_price": Decimal("99.00"),
        "included_tokens": 10_000_000,
        "rpm_limit": 600,
        "tpm_limit": 2_000_000,
        "features": ["summarize", "extract", "chat"],
        "overage_policy": OveragePolicy.METERED,
        "overage_price_per_million": Decimal("8.00"),
        "overage_spend_cap": Decimal("200.00"),
        "sort_order": 30,
    },
]
NEXT = {"free": "pro", "pro": "team"}


def _forget_vanished_customers() -> list[str]:
    """The demo's fake Stripe keeps its state in memory: after a restart the
    customers and subscriptions mirrored here no longer exist there. Put those
    workspaces back on the free tier so checkout works again."""
    import stripe

    from billing.models import Subscription

    if not settings.STRIPE_DEMO_MODE:
        return []
    client = stripe_api.client()
    reset = 0
    for sub in Subscription.objects.exclude(stripe_customer_id=""):
        try:
            client.v1.customers.retrieve(sub.stripe_customer_id)
        except stripe.InvalidRequestError:
            Subscription.objects.filter(pk=sub.pk).update(
                stripe_customer_id="",
                stripe_subscription_id="",
                stripe_item_id="",
                tier=None,
                status="free",
                pending_tier=None,
                scheduled_tier=None,
                cancel_at_period_end=False,
            )
            reset += 1
    return [f"  Demo payments restarted: {reset} workspace(s) back on Free."] if reset else []


def seed() -> list[str]:
    tiers = {}
    for spec in DEMO_TIERS:
        tier, _created = Tier.objects.get_or_create(slug=spec["slug"], defaults=spec)
        tiers[tier.slug] = tier
    for slug, next_slug in NEXT.items():
        if tiers[slug].next_tier_id is None:
            tiers[slug].next_tier = tiers[next_slug]
            tiers[slug].save(update_fields=["next_tier"])
    lines = ["Billing tiers: " + " → ".join(t.name for t in tiers.values())]
    if stripe_api.is_configured():
        from billing.services.catalog import tier_sync_to_stripe

        try:
            for tier in tiers.values():
                tier_sync_to_stripe(tier=tier)
            lines.append("  Stripe products and prices are in sync.")
            lines.extend(_forget_vanished_customers())
        except Exception as exc:  # the demo must start even if Stripe is unreachable
            lines.append(f"  Stripe sync skipped: {type(exc).__name__}")
    else:
        lines.append("  Stripe is not configured: plans show, but can't be bought.")
    from billing.demo_finance import seed_finance_staff

    lines.extend(seed_finance_staff())
    return lines

"""Billing test fixtures: a Free → Pro → Team tier chain (synced to the fake
Stripe when a test uses `stripe_tiers`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import OveragePolicy, Tier


def make_tiers(free_tokens: int = 1_000) -> dict[str, Tier]:
    free = Tier.objects.create(
        slug="free",
        name="Free",
        monthly_price=Decimal("0"),
        included_tokens=free_tokens,
        features=["summarize", "extract"],
        sort_order=10,
    )
    pro = Tier.objects.create(
        slug="pro",
        name="Pro",
        monthly_price=Decimal("29.00"),
        included_tokens=1_000_000,
        features=["summarize", "extract", "chat"],
        rpm_limit=120,
        sort_order=20,
    )
    team = Tier.objects.create(
        slug="team",
        name="Team",
        monthly_price=Decimal("99.00"),
        included_tokens=5_000_000,
        features=["summarize", "extract", "chat"],
        overage_policy=OveragePolicy.METERED,
        overage_price_per_million=Decimal("8.00"),
        overage_spend_cap=Decimal("40.00"),
        sort_order=30,
    )
    free.next_tier, pro.next_tier = pro, team
    free.save()
    pro.save()
    return {"free": free, "pro": pro, "team": team}


@pytest.fixture
def tiers(db) -> dict[str, Tier]:
    return make_tiers()


WEBHOOK_SECRET = "whsec_tollgate_billing_tests"


@pytest.fixture(scope="session")
def _stripe_server():
    from billing.stripe_fake import FakeStripe

    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def stripe_env(_stripe_server, settings):
    """The fake Stripe, reset, with the settings pointing the SDK at it."""
    fake = _stripe_server
    fake.reset()
    settings.STRIPE_SECRET_KEY = "sk_test_tollgate_billing"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return fake


@pytest.fixture
def stripe_tiers(tiers, stripe_env) -> dict[str, Tier]:
    from billing.services.catalog import tier_sync_to_stripe

    return {slug: tier_sync_to_stripe(tier=tier) for slug, tier in tiers.items()}

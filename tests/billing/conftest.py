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


@pytest.fixture
def stripe_env(fake_stripe):
    """The fake Stripe server (tests/fixtures/stripe.py), settings pointing at it."""
    return fake_stripe


@pytest.fixture
def stripe_tiers(tiers, stripe_env) -> dict[str, Tier]:
    from billing.services.catalog import tier_sync_to_stripe

    return {slug: tier_sync_to_stripe(tier=tier) for slug, tier in tiers.items()}


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Archived invoice PDFs go to this test's own directory, not var/media."""
    settings.MEDIA_ROOT = str(tmp_path / "media")

"""Tiers → Stripe Products and Prices, idempotently."""

from __future__ import annotations

from decimal import Decimal

from billing.services.catalog import tier_sync_to_stripe


def test_sync_twice_duplicates_nothing_and_a_price_change_moves_the_lookup_key(stripe_env, tiers):
    client = stripe_env.client()
    pro = tier_sync_to_stripe(tier=tiers["pro"])
    first_price = pro.stripe_price_id
    assert tier_sync_to_stripe(tier=pro).stripe_price_id == first_price
    assert len(client.v1.products.list({"limit": 100}).data) == 1
    assert len(client.v1.prices.list({"limit": 100}).data) == 1
    assert tier_sync_to_stripe(tier=tiers["free"]).stripe_price_id == ""  # no card, no price

    pro.monthly_price = Decimal("35.00")
    pro.save()
    pro = tier_sync_to_stripe(tier=pro)
    assert pro.stripe_price_id != first_price
    by_key = client.v1.prices.list({"lookup_keys": [pro.lookup_key]}).data
    assert [p.id for p in by_key] == [pro.stripe_price_id]
    assert by_key[0].unit_amount == 3500
    assert client.v1.prices.retrieve(first_price).active is False


def test_metered_tier_gets_an_overage_price_on_a_meter(stripe_env, tiers):
    team = tier_sync_to_stripe(tier=tiers["team"])
    team = tier_sync_to_stripe(tier=team)
    client = stripe_env.client()
    overage = client.v1.prices.retrieve(team.stripe_overage_price_id)
    assert overage.recurring.usage_type == "metered"
    assert Decimal(overage.unit_amount_decimal) == Decimal("0.0008")  # cents per token
    assert len(client.v1.billing.meters.list().data) == 1

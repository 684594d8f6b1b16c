"""Tiers → Stripe Products and Prices, idempotently.

The Product id is derived from the tier's slug, so running the sync again finds
it instead of creating another. The monthly Price is found by its lookup key;
when the fee changes a new Price is created and the lookup key moves to it
(`transfer_lookup_key`), the old one is archived. Stripe Prices are immutable,
so history is never rewritten."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.db import transaction
from stripe.params import ProductCreateParams, ProductUpdateParams

from billing import stripe_api
from billing.limits import forget_cached_tiers
from billing.models import Tier
from billing.money import to_decimal_string_minor, to_minor_units
from billing.stripe_api import field
from config import clock


def product_id_for(tier: Tier) -> str:
    return f"tollgate_tier_{tier.slug}"


def _ensure_product(client: stripe.StripeClient, tier: Tier) -> str:
    pid = tier.stripe_product_id or product_id_for(tier)
    params: ProductUpdateParams = {
        "name": f"Tollgate {tier.name}",
        "active": not tier.is_archived,
        "metadata": {"tollgate_tier": tier.slug},
    }
    if tier.description:
        params["description"] = tier.description
    try:
        client.v1.products.retrieve(pid)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        create: ProductCreateParams = {"id": pid, "name": f"Tollgate {tier.name}"}
        create.update(params)  # the same fields, plus id
        client.v1.products.create(create, {"idempotency_key": f"tollgate-product-{pid}"})
        return pid
    client.v1.products.update(pid, params)
    return pid


def _price_by_lookup_key(client: stripe.StripeClient, lookup_key: str):
    found = client.v1.prices.list({"lookup_keys": [lookup_key], "limit": 1})
    return found.data[0] if found.data else None


def _ensure_monthly_price(client: stripe.StripeClient, tier: Tier, product_id: str) -> str:
    amount = to_minor_units(tier.monthly_price, tier.currency)
    current = _price_by_lookup_key(client, tier.lookup_key)
    if (
        current is not None
        and field(current, "unit_amount") == amount
        and field(current, "currency") == tier.currency
        and field(current, "product") == product_id
        and field(current, "active", True)
    ):
        return current.id
    price = client.v1.prices.create(
        {
            "product": product_id,
            "currency": tier.currency,
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "lookup_key": tier.lookup_key,
            "transfer_lookup_key": True,
            "metadata": {"tollgate_tier": tier.slug, "kind": "monthly"},
        },
        {"idempotency_key": f"tollgate-price-{tier.lookup_key}-{tier.currency}-{amount}"},
    )
    if current is not None and current.id != price.id:
        client.v1.prices.update(current.id, {"active": False})
    return price.id


def _ensure_overage_meter(client: stripe.StripeClient) -> str:
    event_name = settings.BILLING_OVERAGE_METER_EVENT
    for meter in client.v1.billing.meters.list({"limit": 100}).data:
        if field(meter, "event_name") == event_name:
            return meter.id
    meter = client.v1.billing.meters.create(
        {
            "display_name": "Tollgate overage tokens",
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": {"event_payload_key": "value"},
        },
        {"idempotency_key": f"tollgate-meter-{event_name}"},
    )
    return meter.id


def _ensure_overage_price(client: stripe.StripeClient, tier: Tier, product_id: str) -> str:
    # Price per token in minor units, e.g. $2.00 per 1M tokens → 0.0002 cents.
    per_token = to_decimal_string_minor(tier.overage_price_per_million / 1_000_000, tier.currency)
    current = _price_by_lookup_key(client, tier.overage_lookup_key)
    if current is not None and str(field(current, "unit_amount_decimal", "")) == per_token:
        return current.id
    meter_id = _ensure_overage_meter(client)
    price = client.v1.prices.create(
        {
            "product": product_id,
            "currency": tier.currency,
            "unit_amount_decimal": per_token,  # the exact decimal string
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
            "lookup_key": tier.overage_lookup_key,
            "transfer_lookup_key": True,
            "metadata": {"tollgate_tier": tier.slug, "kind": "overage"},
        },
        {"idempotency_key": f"tollgate-price-{tier.overage_lookup_key}-{per_token}"},
    )
    if current is not None and current.id != price.id:
        client.v1.prices.update(current.id, {"active": False})
    return price.id


def tier_sync_to_stripe(*, tier: Tier) -> Tier:
    """Create or update the tier's Stripe Product and Prices. Free tiers need no
    Price: workspaces on them have no Stripe subscription."""
    client = stripe_api.client()
    product_id = _ensure_product(client, tier)
    price_id = "" if tier.is_free else _ensure_monthly_price(client, tier, product_id)
    overage_id = (
        _ensure_overage_price(client, tier, product_id)
        if tier.is_metered and not tier.is_free
        else ""
    )
    with transaction.atomic():
        Tier.objects.filter(pk=tier.pk).update(
            stripe_product_id=product_id,
            stripe_price_id=price_id,
            stripe_overage_price_id=overage_id,
            stripe_synced_at=clock.now(),
        )
    forget_cached_tiers()
    tier.refresh_from_db()
    return tier


def tier_for_price(price) -> Tier | None:
    """Which tier a Stripe Price belongs to: by id, then by lookup key, then metadata."""
    price_id = stripe_api.object_id(price)
    tier = Tier.objects.filter(stripe_price_id=price_id).first() if price_id else None
    if tier or isinstance(price, str):
        return tier
    lookup_key = field(price, "lookup_key", "")
    for candidate in Tier.objects.all():
        if lookup_key and candidate.lookup_key == lookup_key:
            return candidate
    slug = field(field(price, "metadata", {}), "tollgate_tier", "")
    return Tier.objects.filter(slug=slug).first() if slug else None

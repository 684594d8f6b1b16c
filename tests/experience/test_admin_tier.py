"""The operator's tier form: Stripe fields once (read-only), and a paid tier
can't be public before it has a Stripe price."""

from __future__ import annotations

import pytest

from billing.models import Tier

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Scale",
    "slug": "scale",
    "description": "Big",
    "monthly_price": "199.00",
    "currency": "usd",
    "included_tokens": "50000000",
    "rpm_limit": "1000",
    "tpm_limit": "4000000",
    "overage_policy": "stop",
    "overage_price_per_million": "0",
    "sort_order": "40",
}


def test_stripe_fields_once_and_public_needs_a_price(admin_client):
    page = admin_client.get("/admin/billing/tier/add/").content.decode()
    assert page.count("Stripe price id") == 1
    refused = admin_client.post("/admin/billing/tier/add/", {**FORM, "is_public": "on"})
    assert refused.status_code == 200
    assert "has no Stripe price yet" in refused.content.decode()
    assert not Tier.objects.filter(slug="scale").exists()
    saved = admin_client.post("/admin/billing/tier/add/", FORM)
    assert saved.status_code == 302
    assert Tier.objects.get(slug="scale").is_public is False

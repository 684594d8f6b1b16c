"""Price changes never rewrite history: each event keeps the price in force
when it ran (the rate card's effective_from)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
from django.conf import settings
from django.utils import timezone

from tests.usage.helpers import TEXT, auth, summaries_url
from usage.models import RateCard, UsageEvent


def test_each_event_keeps_the_price_it_was_charged_at(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    assert (
        httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret)).status_code
        == 201
    )
    RateCard.objects.create(
        model=settings.OPENAI_DEFAULT_MODEL,
        input_per_million=Decimal("1.00"),
        cached_input_per_million=Decimal("0.50"),
        output_per_million=Decimal("4.00"),
        effective_from=timezone.now() - timedelta(seconds=1),
    )
    assert (
        httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret)).status_code
        == 201
    )

    old, new = UsageEvent.objects.order_by("created_at")
    assert (old.input_price, old.output_price) == (Decimal("0.15"), Decimal("0.60"))
    assert (new.input_price, new.output_price) == (Decimal("1.00"), Decimal("4.00"))
    assert new.cost > old.cost

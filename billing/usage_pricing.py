"""Usage with money: every request of a workspace priced at its tier.

How an event's value is computed (the customer's price, not our upstream cost):

* the tier is the workspace's current effective tier (`billing.limits.effective_tier`;
  tier history is not kept per event, so a period that spans a plan change is
  priced at today's tier — said in the export's `tier` column);
* `overage_tokens` are the event's tokens past the included allowance, exactly
  as the meter recorded them for Stripe (`OverageReport.tokens`, metered tiers
  only; 0 otherwise);
* `plan_rate_per_million` = monthly fee / included tokens x 1M: what one included
  token is worth (0 on a free tier or a tier without included tokens);
* `included_value` = (total_tokens - overage_tokens) x plan rate;
  `overage_charge` = overage_tokens x the tier's overage price per 1M;
  `value` = included_value + overage_charge.
Per-event amounts are fractions of a cent, so they keep 6 decimals (Decimal
throughout, half-up); sums per period are what the invoices show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import Workspace
from billing.limits import effective_tier, subscription_for
from billing.models import OverageReport, Tier
from config import clock
from config.tabular import Column, Kind
from usage.dashboard import TRACE_COLUMNS, trace_row
from usage.models import UsageEvent

MILLION = Decimal(1_000_000)
MICRO = Decimal("0.000001")


@dataclass(frozen=True)
class TierPrice:
    slug: str
    currency: str
    plan_rate_per_million: Decimal
    overage_per_million: Decimal

    @classmethod
    def of(cls, tier: Tier | None) -> TierPrice:
        if tier is None:
            return cls("free", "usd", Decimal(0), Decimal(0))
        rate = Decimal(0)
        if tier.included_tokens and tier.monthly_price:
            rate = tier.monthly_price * MILLION / Decimal(tier.included_tokens)
        return cls(
            tier.slug,
            tier.currency,
            rate.quantize(MICRO, ROUND_HALF_UP),
            Decimal(tier.overage_price_per_million) if tier.is_metered else Decimal(0),
        )


def usage_events(workspace: Workspace, start: dt.datetime | None, end: dt.datetime | None):
    qs: QuerySet = UsageEvent.objects.for_workspace(workspace)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    return qs


def _price_of(workspace: Workspace) -> TierPrice:
    tier, _paid = effective_tier(subscription_for(workspace), clock.now())
    return TierPrice.of(tier)


def priced_usage(
    workspace: Workspace, start: dt.datetime | None, end: dt.datetime | None
) -> Iterator[dict[str, Any]]:
    """One dict per event, oldest first, streamed from the database."""
    price = _price_of(workspace)
    overage = OverageReport.objects.filter(usage_event_id=OuterRef("pk")).values("tokens")[:1]
    events = (
        usage_events(workspace, start, end)
        .select_related("user", "api_key")
        .annotate(overage_tokens=Coalesce(Subquery(overage), Value(0)))
        .order_by("created_at", "pk")
    )
    for event in events.iterator(chunk_size=2_000):
        yield price_event(event, price)


def price_event(event: Any, price: TierPrice) -> dict[str, Any]:
    over = min(int(event.overage_tokens or 0), event.total_tokens)
    included = event.total_tokens - over
    included_value = (Decimal(included) * price.plan_rate_per_million / MILLION).quantize(
        MICRO, ROUND_HALF_UP
    )
    overage_charge = (Decimal(over) * price.overage_per_million / MILLION).quantize(
        MICRO, ROUND_HALF_UP
    )
    return {
        **trace_row(event),  # the same columns as the usage page's CSV
        "tier": price.slug,
        "currency": price.currency.upper(),
        "included_tokens_used": included,
        "overage_tokens": over,
        "plan_rate_per_million": price.plan_rate_per_million,
        "overage_price_per_million": price.overage_per_million,
        "included_value": included_value,
        "overage_charge": overage_charge,
        "value": included_value + overage_charge,
    }


USAGE_COLUMNS = [
    *TRACE_COLUMNS,
    Column("tier"),
    Column("currency"),
    Column("included_tokens_used", Kind.INTEGER),
    Column("overage_tokens", Kind.INTEGER),
    Column("plan_rate_per_million", Kind.DECIMAL),
    Column("overage_price_per_million", Kind.DECIMAL),
    Column("included_value", Kind.DECIMAL),
    Column("overage_charge", Kind.DECIMAL),
    Column("value", Kind.DECIMAL),
]

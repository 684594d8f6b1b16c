"""Billing's answer to the meter's one question (usage/limits.py): what may this
workspace do right now? Reads only: what happens when usage is recorded or a
quota refused is written by `billing.services.usage_hooks` (limits read, hooks write)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse

from accounts.models import Workspace
from billing import operator_settings
from billing.models import Subscription, Tier
from config import clock
from usage.limits import (
    AccessRefusal,
    WorkspaceLimits,
    _month_bounds,
    default_limits,
    forget_cached_limits,
)

# The free tier is read on nearly every metered call and changes only when an
# operator edits it: keep it per process for a few seconds (dropped at once in
# the process that saves a Tier, see billing.signals).
FREE_TIER_CACHE_SECONDS = 30
_free_tier_cache: dict[str, tuple[float, Tier | None]] = {}


def forget_cached_tiers() -> None:
    _free_tier_cache.clear()
    _admitted_limits.clear()
    forget_cached_limits()


# The limits each workspace's calls were admitted under (set when the meter
# reserves), reused by the recording hook of the same process so recording a
# call costs no second subscription lookup. Bounded in time, and a subscription
# change in this process drops the entry (billing.signals).
ADMITTED_LIMITS_SECONDS = 60
_admitted_limits: dict[int, tuple[float, WorkspaceLimits]] = {}


def forget_admitted_limits(workspace_id: int) -> None:
    _admitted_limits.pop(workspace_id, None)


def admitted_limits(workspace_id: int) -> WorkspaceLimits:
    """The limits a just-finished call was admitted under (fresh if unknown)."""
    cached = _admitted_limits.get(workspace_id)
    if cached and cached[0] > time.monotonic() and clock.now() < cached[1].period_end:
        return cached[1]
    return workspace_limits(workspace_id)


def free_tier() -> Tier | None:
    slug = settings.BILLING_FREE_TIER_SLUG
    cached = _free_tier_cache.get(slug)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    tier = Tier.objects.select_related("next_tier").filter(slug=slug).first()
    _free_tier_cache[slug] = (time.monotonic() + FREE_TIER_CACHE_SECONDS, tier)
    return tier


def subscription_for(workspace: Workspace | int) -> Subscription | None:
    """One query: the billing row with its tiers (the quota must be fresh, so
    it is never cached: an upgrade applies on the next call)."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    return (
        Subscription.objects.select_related("tier", "tier__next_tier", "scheduled_tier", "dunning")
        .filter(workspace_id=workspace_id)
        .first()
    )


def effective_tier(sub: Subscription | None, now: datetime) -> tuple[Tier | None, bool]:
    """The tier whose quota applies now, and whether it is a paid subscription's.

    A paid tier applies while Stripe says the subscription is in good standing and
    its period has not run out. A cancellation (or downgrade) set for the period
    end applies once that moment passes, even before Stripe's webhook arrives."""
    if sub is None or not sub.is_paid or sub.tier is None:
        return free_tier(), False
    ended = sub.current_period_end is not None and now >= sub.current_period_end
    if ended and sub.cancel_at_period_end:
        return free_tier(), False
    if ended and sub.scheduled_tier is not None:
        return sub.scheduled_tier, True
    return sub.tier, True


def current_period(sub: Subscription | None, paid: bool, now: datetime):
    """Stripe's period for paid tiers; the calendar month (UTC) on the free tier."""
    start, end = (sub.current_period_start, sub.current_period_end) if sub else (None, None)
    if paid and start and end and start <= now < end:
        return start, end
    return _month_bounds(now)


def overage_allowance(tier: Tier, sub: Subscription | None) -> int | None:
    """Tokens past the included amount that the workspace's spend cap allows."""
    cap = sub.overage_spend_cap if sub and sub.overage_spend_cap is not None else None
    if cap is None:
        cap = tier.overage_spend_cap
    if cap is None or tier.overage_price_per_million <= 0:
        return None
    tokens = (cap * Decimal(1_000_000) / tier.overage_price_per_million).to_integral_value(
        ROUND_FLOOR
    )
    return int(tokens)


def upgrade_url(next_tier: Tier | None) -> str:
    url = reverse("billing:upgrade")
    return f"{url}?plan={next_tier.slug}" if next_tier else url


def limits_for_tier(
    tier: Tier, sub: Subscription | None, start: datetime, end: datetime
) -> WorkspaceLimits:
    next_tier = tier.next_tier if tier.next_tier and not tier.next_tier.is_archived else None
    return WorkspaceLimits(
        plan=tier.slug,
        plan_name=tier.name,
        included_tokens=tier.included_tokens,
        period_start=start,
        period_end=end,
        overage_policy="metered" if tier.is_metered else "stop",
        overage_token_allowance=overage_allowance(tier, sub) if tier.is_metered else 0,
        overage_price_per_million=tier.overage_price_per_million,
        rpm_limit=tier.rpm_limit,
        tpm_limit=tier.tpm_limit,
        features=frozenset(tier.features or ()),
        next_plan=next_tier.slug if next_tier else None,
        upgrade_url=upgrade_url(next_tier),
        monthly_price=tier.monthly_price,
    )


def workspace_limits(workspace: Workspace | int) -> WorkspaceLimits:
    """TOLLGATE_LIMITS_PROVIDER: the tier and period from the subscription, the
    free tier when there is none (settings' defaults if no tiers are defined)."""
    now = clock.now()
    sub = subscription_for(workspace)
    tier, paid = effective_tier(sub, now)
    if tier is None:
        limits = default_limits(workspace)  # type: ignore[arg-type]
    else:
        start, end = current_period(sub, paid, now)
        limits = limits_for_tier(tier, sub, start, end)
    limits = apply_operator_rules(limits, sub, now)
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    _admitted_limits[workspace_id] = (time.monotonic() + ADMITTED_LIMITS_SECONDS, limits)
    return limits


def _dunning(sub: Subscription | None):
    try:
        return sub.dunning if sub is not None else None
    except ObjectDoesNotExist:
        return None


def payment_overdue(sub: Subscription, dunning) -> AccessRefusal:
    return AccessRefusal(
        status=402,
        code="payment_overdue",
        message=(
            f"Payment for this workspace is overdue (subscription {dunning.status}). "
            "Billing, invoices and exports stay open: an owner or admin can pay in billing."
        ),
        details=(
            ("status", dunning.status),
            ("billing_url", settings.SITE_URL.rstrip("/") + reverse("billing:overview")),
        ),
    )


BACKSTOP_REFUSAL = AccessRefusal(
    status=503,
    code="upstream_unavailable",
    message=(
        "The service has reached its upstream spending limit for this month; the operator "
        "has paused new AI feature calls. Please try again later."
    ),
    details=(("reason", "upstream_budget_reached"),),
)


def apply_operator_rules(limits: WorkspaceLimits, sub: Subscription | None, now: datetime):
    """Dunning (DESIGN.md's table) and the upstream backstop, from the billing
    row already read and the per-process settings cache: no extra query."""
    rules = operator_settings.cached()
    if rules.backstop_tripped_month == f"{now:%Y-%m}" and rules.backstop_policy == "refuse":
        return replace(limits, refusal=BACKSTOP_REFUSAL)
    dunning = _dunning(sub)
    if dunning is None or sub is None:
        return limits
    if dunning.refused:
        return replace(limits, refusal=payment_overdue(sub, dunning))
    grace = timedelta(days=rules.past_due_overage_grace_days)
    overdue_since = dunning.past_due_since
    if limits.overage_policy == "metered" and overdue_since and now >= overdue_since + grace:
        # Past the grace period: the included tokens remain, metered overage stops.
        return replace(limits, overage_token_allowance=0)
    return limits

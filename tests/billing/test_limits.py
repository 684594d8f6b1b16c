"""The limits provider and the money helper (no Stripe needed)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.limits import workspace_limits
from billing.models import ConsentRecord, ImmutableError, Subscription
from billing.money import from_minor_units, to_minor_units
from usage.limits import get_workspace_limits


def test_money_round_trips_minor_units():
    assert to_minor_units(Decimal("19.99"), "usd") == 1999
    assert to_minor_units(Decimal("0.005"), "usd") == 1  # half up
    assert to_minor_units(Decimal("500"), "jpy") == 500
    assert from_minor_units(1999, "usd") == Decimal("19.99")
    with pytest.raises(TypeError):
        to_minor_units(19.99, "usd")  # floats are refused


def test_free_tier_when_no_subscription(workspace, tiers):
    limits = get_workspace_limits(workspace)  # through TOLLGATE_LIMITS_PROVIDER
    assert limits.plan == "free"
    assert limits.included_tokens == 1_000
    assert limits.overage_policy == "stop"
    assert limits.next_plan == "pro"
    assert limits.upgrade_url == "/billing/upgrade/?plan=pro"
    assert limits.features == frozenset({"summarize", "extract"})
    assert limits.period_start <= timezone.now() < limits.period_end


def test_paid_tier_period_from_subscription_and_cancel_drops_to_free(workspace, tiers):
    now = timezone.now()
    sub = Subscription.objects.create(
        workspace=workspace,
        tier=tiers["team"],
        status="active",
        stripe_subscription_id="sub_1",
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )
    limits = workspace_limits(workspace)
    assert (limits.plan, limits.period_start) == ("team", sub.current_period_start)
    assert limits.overage_policy == "metered"
    assert limits.overage_token_allowance == 5_000_000  # $40 cap at $8 per 1M
    assert limits.hard_token_limit == 10_000_000
    # Cancelled at period end: once the period is over it is the free tier,
    # even before Stripe's webhook arrives.
    sub.cancel_at_period_end = True
    sub.current_period_end = now - timedelta(seconds=1)
    sub.save()
    assert workspace_limits(workspace).plan == "free"


def test_no_tiers_falls_back_to_settings(workspace):
    assert workspace_limits(workspace).plan == "default"


def test_consent_records_are_immutable(workspace, owner, tiers):
    record = ConsentRecord.objects.create(
        workspace=workspace,
        workspace_name=workspace.name,
        user=owner,
        user_email=owner.email,
        role="owner",
        from_tier=tiers["free"],
        to_tier=tiers["pro"],
        price_shown=Decimal("29.00"),
        currency="usd",
        included_tokens_shown=1_000_000,
        amount_due_now_shown=Decimal("29.00"),
        terms_version="v",
        terms_text="t",
        terms_sha256="0" * 64,
        channel="web",
    )
    record.price_shown = Decimal("1")
    with pytest.raises(ImmutableError):
        record.save()
    with pytest.raises(ImmutableError):
        record.delete()
    with pytest.raises(ImmutableError):
        ConsentRecord.objects.filter(pk=record.pk).update(price_shown=Decimal("1"))
    # The evidence outlives the workspace it was given for.
    workspace.delete()
    record = ConsentRecord.objects.get(pk=record.pk)
    assert (record.workspace, record.price_shown) == (None, Decimal("29.00"))


def test_a_new_period_resets_usage(workspace, tiers):
    """The meter counts usage per period_start; a renewed subscription moves it."""
    from usage.models import CounterScope, UsageCounter
    from usage.selectors import quota

    now = timezone.now()
    old_start = now - timedelta(days=35)
    sub = Subscription.objects.create(
        workspace=workspace,
        tier=tiers["pro"],
        status="active",
        stripe_subscription_id="sub_1",
        current_period_start=old_start,
        current_period_end=now - timedelta(days=5),
    )
    UsageCounter.objects.create(
        workspace=workspace,
        scope=CounterScope.WORKSPACE,
        scope_id=workspace.pk,
        period_start=old_start,
        used=1_000_000,
    )
    # Stripe renewed it (the webhook mirrored the new period): a fresh quota.
    sub.current_period_start, sub.current_period_end = (
        now - timedelta(days=5),
        now + timedelta(days=25),
    )
    sub.save()
    assert quota(workspace=workspace)["used_tokens"] == 0
    assert quota(workspace=workspace)["remaining_tokens"] == 1_000_000

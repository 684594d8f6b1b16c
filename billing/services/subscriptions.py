"""Stripe customers, Checkout, the Billing Portal, and the local mirror of each
workspace's subscription. `subscription_sync` is the one writer of the mirror:
it always works from a freshly retrieved Stripe object, so the order in which
webhooks arrive can't roll the state back."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import stripe
from django.db import transaction
from stripe.params import CustomerCreateParams
from stripe.params.checkout import SessionCreateParamsLineItem

from accounts import audit
from accounts.models import Workspace
from billing import stripe_api
from billing.models import Subscription, SubscriptionStatus, Tier
from billing.money import format_money
from billing.services.catalog import tier_for_price
from billing.stripe_api import StripeFailed, field, from_timestamp, object_id
from config import clock
from config.errors import InvalidRequest

logger = logging.getLogger(__name__)

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})


def subscription_row(workspace: Workspace, *, lock: bool = False) -> Subscription:
    """The workspace's billing row, created on first need; `lock` takes the row
    lock that serializes plan changes (call inside a transaction)."""
    sub, _ = Subscription.objects.get_or_create(workspace=workspace)
    if lock:
        sub = Subscription.objects.select_for_update().get(pk=sub.pk)
    return sub


def ensure_customer(*, workspace: Workspace, email: str = "") -> str:
    """One Stripe customer per workspace; the idempotency key makes two racing
    requests create one customer."""
    sub = subscription_row(workspace)
    if sub.stripe_customer_id:
        return sub.stripe_customer_id
    client = stripe_api.client()
    params: CustomerCreateParams = {
        "name": workspace.name,
        "metadata": {"workspace_id": str(workspace.pk)},
    }
    if email:
        params["email"] = email
    try:
        customer = client.v1.customers.create(
            params, {"idempotency_key": f"tollgate-customer-ws-{workspace.pk}"}
        )
    except stripe.StripeError as exc:
        logger.warning("stripe customer create failed: %s", exc.__class__.__name__)
        raise StripeFailed() from exc
    with transaction.atomic():
        sub = subscription_row(workspace, lock=True)
        if not sub.stripe_customer_id:
            sub.stripe_customer_id = customer.id
            sub.save(update_fields=["stripe_customer_id", "updated_at"])
    return sub.stripe_customer_id


CHECKOUT_TTL = timedelta(minutes=30)  # Stripe's minimum expiry for a session


def open_checkout_url(sub: Subscription, tier: Tier) -> str:
    """The still-open Checkout for `tier` that another admin started, if any."""
    fresh = sub.checkout_expires_at and sub.checkout_expires_at > clock.now()
    return sub.checkout_url if fresh and sub.pending_tier_id == tier.pk else ""


def checkout_start(
    *, workspace: Workspace, tier: Tier, email: str, success_url: str, cancel_url: str
) -> str:
    """A Checkout Session for a first paid tier; returns the hosted page's URL.
    The caller holds the billing row lock (upgrade_consent)."""
    if tier.is_free or not tier.stripe_price_id:
        raise InvalidRequest(
            f"The {tier.name} plan can't be bought yet (it has no Stripe price).",
            details={"plan": ["not purchasable"]},
        )
    customer_id = ensure_customer(workspace=workspace, email=email)
    line_items: list[SessionCreateParamsLineItem] = [{"price": tier.stripe_price_id, "quantity": 1}]
    if tier.stripe_overage_price_id:
        line_items.append({"price": tier.stripe_overage_price_id})
    meta = {"workspace_id": str(workspace.pk), "tier": tier.slug}
    expires_at = clock.now() + CHECKOUT_TTL
    try:
        session = stripe_api.client().v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(workspace.pk),
                "line_items": line_items,
                "success_url": success_url,
                "cancel_url": cancel_url,
                "metadata": meta,
                "subscription_data": {"metadata": meta},
                "expires_at": int(expires_at.timestamp()),
            }
        )
    except stripe.StripeError as exc:
        logger.warning("stripe checkout create failed: %s", exc.__class__.__name__)
        raise StripeFailed() from exc
    Subscription.objects.filter(workspace=workspace).update(
        pending_tier=tier,
        checkout_session_id=session.id,
        checkout_url=session.url,
        checkout_expires_at=expires_at,
    )
    return session.url or ""  # always set for a hosted Checkout session


def portal_url(*, workspace: Workspace, return_url: str) -> str:
    customer_id = ensure_customer(workspace=workspace)
    try:
        session = stripe_api.client().v1.billing_portal.sessions.create(
            {"customer": customer_id, "return_url": return_url}
        )
    except stripe.StripeError as exc:
        raise StripeFailed() from exc
    return session.url


def checkout_complete(*, session_id: str) -> Subscription | None:
    """Re-fetch a Checkout Session (from the return page or the webhook) and
    mirror the subscription it created."""
    session = stripe_api.client().v1.checkout.sessions.retrieve(session_id)
    workspace_id = field(session, "client_reference_id") or field(
        field(session, "metadata", {}), "workspace_id"
    )
    workspace = Workspace.objects.filter(pk=workspace_id).first() if workspace_id else None
    subscription_id = object_id(field(session, "subscription"))
    if workspace is None or not subscription_id:
        return None
    customer_id = object_id(field(session, "customer"))
    if customer_id:
        Subscription.objects.filter(workspace=workspace, stripe_customer_id="").update(
            stripe_customer_id=customer_id
        )
    return subscription_sync(stripe_subscription_id=subscription_id, workspace=workspace)


def _workspace_for(stripe_sub) -> Workspace | None:
    workspace_id = field(field(stripe_sub, "metadata", {}), "workspace_id")
    if workspace_id:
        ws = Workspace.objects.filter(pk=workspace_id).first()
        if ws:
            return ws
    customer_id = object_id(field(stripe_sub, "customer"))
    row = Subscription.objects.filter(stripe_customer_id=customer_id).select_related("workspace")
    found = row.first() if customer_id else None
    return found.workspace if found else None


def _base_item(stripe_sub):
    """The subscription item carrying the tier's monthly (licensed) price."""
    items = field(field(stripe_sub, "items", {}), "data", []) or []
    for item in items:
        recurring = field(field(item, "price", {}), "recurring", {})
        if field(recurring, "usage_type", "licensed") != "metered":
            return item
    return items[0] if items else None


def _period(stripe_sub, item):
    # Since API 2025-03-31 the period lives on the items; older shapes kept it on
    # the subscription.
    start = field(item, "current_period_start") or field(stripe_sub, "current_period_start")
    end = field(item, "current_period_end") or field(stripe_sub, "current_period_end")
    return from_timestamp(start), from_timestamp(end)


def _pending_tier(stripe_sub) -> Tier | None:
    pending = field(stripe_sub, "pending_update")
    if not pending:
        return None
    for item in field(pending, "subscription_items", []) or []:
        tier = tier_for_price(field(item, "price"))
        if tier is not None:
            return tier
    return None


def _apply(sub: Subscription, stripe_sub) -> None:
    status = field(stripe_sub, "status", "")
    sub.stripe_customer_id = object_id(field(stripe_sub, "customer")) or sub.stripe_customer_id
    sub.synced_at = clock.now()
    if status in ENDED_STATUSES:
        sub.status = SubscriptionStatus.CANCELED if status == "canceled" else status
        sub.tier = None
        sub.pending_tier = sub.scheduled_tier = None
        sub.scheduled_from = None
        sub.cancel_at_period_end = False
        return
    item = _base_item(stripe_sub)
    price_tier = tier_for_price(field(item, "price")) if item else None
    start, end = _period(stripe_sub, item)
    if sub.scheduled_tier_id and price_tier == sub.scheduled_tier:
        # A downgrade already priced in at Stripe: keep the paid-for tier until
        # the period it was scheduled for begins.
        if sub.scheduled_from and start and start >= sub.scheduled_from:
            sub.tier, sub.scheduled_tier, sub.scheduled_from = price_tier, None, None
    elif price_tier is not None:
        sub.tier = price_tier
        sub.scheduled_tier, sub.scheduled_from = None, None
    sub.stripe_subscription_id = stripe_sub.id
    sub.stripe_item_id = field(item, "id", "") if item else ""
    sub.status = status
    sub.current_period_start, sub.current_period_end = start, end
    sub.cancel_at_period_end = bool(field(stripe_sub, "cancel_at_period_end", False))
    sub.pending_tier = _pending_tier(stripe_sub)
    sub.checkout_session_id, sub.checkout_url, sub.checkout_expires_at = "", "", None


def subscription_sync(
    *, stripe_subscription_id: str, workspace: Workspace | None = None, stripe_sub=None
) -> Subscription | None:
    """Mirror Stripe's current state of a subscription (retrieved now unless the
    caller passes the object Stripe just returned)."""
    if stripe_sub is None:
        stripe_sub = stripe_api.client().v1.subscriptions.retrieve(stripe_subscription_id)
    workspace = workspace or _workspace_for(stripe_sub)
    if workspace is None:
        logger.warning("stripe subscription %s has no workspace", stripe_subscription_id)
        return None
    with transaction.atomic():
        sub = subscription_row(workspace, lock=True)
        other = sub.stripe_subscription_id and sub.stripe_subscription_id != stripe_sub.id
        if other and sub.is_paid and field(stripe_sub, "status", "") in ENDED_STATUSES:
            return sub  # an older, ended subscription: the current one wins
        _apply(sub, stripe_sub)
        sub.save()
    from billing.services.dunning import dunning_refresh

    dunning_refresh(subscription_id=sub.pk)  # access follows the new status
    return sub


def subscription_cancel(*, workspace: Workspace, at_period_end: bool = True) -> Subscription:
    """Cancel at the end of the period already paid for (the quota stays until then)."""
    with transaction.atomic():
        sub = subscription_row(workspace, lock=True)
        if not sub.is_paid:
            raise InvalidRequest("This workspace has no paid subscription to cancel.")
        try:
            stripe_sub = stripe_api.client().v1.subscriptions.update(
                sub.stripe_subscription_id, {"cancel_at_period_end": at_period_end}
            )
        except stripe.StripeError as exc:
            raise StripeFailed() from exc
        _apply(sub, stripe_sub)
        sub.save()
    from billing.services.dunning import dunning_refresh

    dunning_refresh(subscription_id=sub.pk)  # access follows the new status
    return sub


def subscription_downgrade(*, workspace: Workspace, tier: Tier) -> Subscription:
    """Move to a cheaper tier from the next period: Stripe bills the lower price
    from the next invoice (no proration), the current tier's quota stays until
    the period ends. Downgrading to the free tier is a cancellation."""
    with transaction.atomic():
        sub = subscription_row(workspace, lock=True)
        if not sub.is_paid or sub.tier is None:
            raise InvalidRequest("This workspace has no paid subscription to downgrade.")
        if tier.monthly_price >= sub.tier.monthly_price:
            raise InvalidRequest(
                f"{tier.name} is not cheaper than {sub.tier.name}.",
                details={"plan": ["not a downgrade"]},
            )
        if tier.is_free:
            return subscription_cancel(workspace=workspace)
        if not tier.stripe_price_id:
            raise InvalidRequest(f"The {tier.name} plan has no Stripe price yet.")
        try:
            stripe_sub = stripe_api.client().v1.subscriptions.update(
                sub.stripe_subscription_id,
                {
                    "items": [{"id": sub.stripe_item_id, "price": tier.stripe_price_id}],
                    "proration_behavior": "none",
                    "cancel_at_period_end": False,
                },
                {"idempotency_key": f"tollgate-downgrade-{sub.stripe_item_id}-{tier.slug}"},
            )
        except stripe.StripeError as exc:
            raise StripeFailed() from exc
        sub.scheduled_tier, sub.scheduled_from = tier, sub.current_period_end
        _apply(sub, stripe_sub)
        sub.save()
    from billing.services.dunning import dunning_refresh

    dunning_refresh(subscription_id=sub.pk)  # access follows the new status
    return sub


def subscriptions_refresh_due(*, limit: int = 200) -> int:
    """Safety net for lost webhooks: re-fetch paid subscriptions whose period
    has ended here (a renewal, cancellation or downgrade Stripe has applied)."""
    due = Subscription.objects.filter(
        current_period_end__lte=clock.now(), status__in=["active", "trialing", "past_due"]
    ).exclude(stripe_subscription_id="")
    refreshed = 0
    for sub_id in due.values_list("stripe_subscription_id", flat=True)[:limit]:
        try:
            subscription_sync(stripe_subscription_id=sub_id)
            refreshed += 1
        except stripe.StripeError:
            logger.warning("could not refresh subscription %s", sub_id)
    return refreshed


def spend_cap_set(*, workspace: Workspace, cap: Decimal | None, actor=None) -> Subscription:
    """The workspace's own overage cap per period (blank: the tier's default).
    It can only be lowered below the tier's cap, never raised past it."""
    with transaction.atomic():
        sub = subscription_row(workspace, lock=True)
        tier = sub.tier if sub.is_paid else None
        if tier is None or not tier.is_metered:
            raise InvalidRequest("Only plans with metered overage have a spend cap.")
        if cap is not None and cap < 0:
            raise InvalidRequest("The cap can't be negative.", details={"cap": ["negative"]})
        ceiling = tier.overage_spend_cap
        if cap is not None and ceiling is not None and cap > ceiling:
            raise InvalidRequest(
                f"The {tier.name} plan caps overage at {format_money(ceiling, tier.currency)}.",
                details={"cap": ["above the plan's cap"]},
            )
        old, sub.overage_spend_cap = sub.overage_spend_cap, cap
        sub.save(update_fields=["overage_spend_cap", "updated_at"])
        audit.record(
            workspace=workspace,
            actor=actor,
            action="billing.spend_cap_changed",
            target=workspace.name,
            old=None if old is None else str(old),
            new=None if cap is None else str(cap),
        )
    return sub

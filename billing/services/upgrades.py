"""Upgrade with explicit consent — the product's signature.

1. `upgrade_quote` works out what the person will be shown: the new price, the
   included tokens, what Stripe charges now (a proration preview pinned to a
   proration date) and the terms text.
2. `upgrade_consent` (owners and admins only) locks the workspace's billing row,
   writes the immutable ConsentRecord with the hash of exactly that text, and
   only then asks Stripe to change the subscription with
   payment_behavior=pending_if_incomplete, so the change happens only if the
   payment succeeds. The new quota applies once Stripe confirms (the response
   or a webhook re-fetch). Workspaces without a paid subscription go through
   Checkout instead."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

import stripe
from django.db import transaction
from stripe.params import SubscriptionUpdateParamsItem

from accounts import audit
from accounts.models import Membership, Workspace
from accounts.roles import Perm
from billing import stripe_api
from billing.limits import effective_tier
from billing.models import ConsentRecord, Subscription, Tier
from billing.money import format_money, from_minor_units, quantize
from billing.services.subscriptions import (
    _apply,
    checkout_start,
    open_checkout_url,
    subscription_row,
)
from billing.stripe_api import StripeFailed, field
from billing.terms import TERMS_VERSION, sha256, terms_text
from config import clock
from config.errors import ApiError, Forbidden, InvalidRequest

logger = logging.getLogger(__name__)


class NotAnUpgrade(ApiError):
    status, code = 400, "invalid_request"


@dataclass(frozen=True)
class Quote:
    from_tier: Tier | None
    to_tier: Tier
    amount_due_now: Decimal | None  # None: Stripe couldn't preview it
    amount_is_estimate: bool
    proration_date: int  # unix seconds; the update uses the same moment
    via_checkout: bool
    terms_version: str
    terms_text: str

    @property
    def terms_sha256(self) -> str:
        return sha256(self.terms_text)

    @property
    def amount_due_now_display(self) -> str:
        return format_money(self.amount_due_now, self.to_tier.currency)


def _metered_note(tier: Tier) -> str:
    if not tier.is_metered:
        return (
            "When the included tokens are used, requests stop until you choose to upgrade "
            "again; nothing more is charged without your consent."
        )
    cap = tier.overage_spend_cap
    cap_text = f", up to {format_money(cap, tier.currency)} per period" if cap else ""
    return (
        "Tokens past the included amount are billed at "
        f"{format_money(tier.overage_price_per_million, tier.currency)} per 1M tokens{cap_text}."
    )


def _local_proration(sub: Subscription, from_tier: Tier, to_tier: Tier, now) -> Decimal:
    """Fallback when Stripe can't preview: the price difference for the rest of the period."""
    start, end = sub.current_period_start, sub.current_period_end
    if not (start and end and end > now):
        return to_tier.monthly_price
    remaining = Decimal((end - now).total_seconds()) / Decimal((end - start).total_seconds())
    diff = (to_tier.monthly_price - from_tier.monthly_price) * remaining
    return quantize(max(diff, Decimal(0)), to_tier.currency)


def _stripe_preview(sub: Subscription, to_tier: Tier, proration_date: int) -> Decimal | None:
    try:
        preview = stripe_api.client().v1.invoices.create_preview(
            {
                "customer": sub.stripe_customer_id,
                "subscription": sub.stripe_subscription_id,
                "subscription_details": {
                    "items": [{"id": sub.stripe_item_id, "price": to_tier.stripe_price_id}],
                    "proration_behavior": "always_invoice",
                    "proration_date": proration_date,
                },
            }
        )
    except stripe.StripeError as exc:
        logger.warning("stripe proration preview failed: %s", exc.__class__.__name__)
        return None
    return from_minor_units(field(preview, "amount_due", 0), field(preview, "currency", "usd"))


def check_upgrade_target(current: Tier | None, to_tier: Tier) -> None:
    if to_tier.is_archived or not to_tier.is_public:
        raise InvalidRequest(
            f"There is no plan called “{to_tier.slug}”.", details={"plan": ["unknown"]}
        )
    if current is not None and to_tier.pk == current.pk:
        raise NotAnUpgrade(
            f"This workspace is already on {to_tier.name}.", details={"plan": ["current plan"]}
        )
    if to_tier.is_free or (current is not None and to_tier.monthly_price <= current.monthly_price):
        raise NotAnUpgrade(
            f"{to_tier.name} is not an upgrade from {current.name if current else 'your plan'}; "
            "downgrades take effect at the end of the period from the billing page.",
            details={"plan": ["not an upgrade"]},
        )
    if not to_tier.stripe_price_id:
        raise InvalidRequest(
            f"The {to_tier.name} plan can't be bought yet: it has no Stripe price "
            "(an operator must sync it to Stripe).",
            details={"plan": ["not purchasable"]},
        )


def upgrade_quote(
    *, workspace: Workspace, to_tier: Tier, proration_date: int | None = None
) -> Quote:
    now = clock.now()
    sub = subscription_row(workspace)
    current, paid = effective_tier(sub, now)
    check_upgrade_target(current, to_tier)
    proration_date = proration_date or int(now.timestamp())
    via_checkout = not paid
    amount: Decimal | None
    if via_checkout:
        amount, estimate = to_tier.monthly_price, False
    else:
        amount = _stripe_preview(sub, to_tier, proration_date)
        estimate = amount is None
        if amount is None and current is not None:
            amount = _local_proration(sub, current, to_tier, now)
    text = terms_text(
        from_name=current.name if current else "no plan",
        to_name=to_tier.name,
        monthly_price=to_tier.monthly_price,
        currency=to_tier.currency,
        included_tokens=to_tier.included_tokens,
        amount_due_now=amount,
        metered_note=_metered_note(to_tier),
        new_period=via_checkout,
    )
    return Quote(
        from_tier=current,
        to_tier=to_tier,
        amount_due_now=amount,
        amount_is_estimate=estimate,
        proration_date=proration_date,
        via_checkout=via_checkout,
        terms_version=TERMS_VERSION,
        terms_text=text,
    )


@dataclass(frozen=True)
class UpgradeResult:
    consent: ConsentRecord | None
    subscription: Subscription
    outcome: str  # "upgraded" | "pending_payment" | "checkout_required" | "already_requested"
    checkout_url: str = ""


def _require_manager(membership: Membership | None) -> Membership:
    if membership is None or not membership.can(Perm.MANAGE_BILLING):
        raise Forbidden(
            "Only the workspace's owners and admins can change the plan. "
            "Ask one of them to upgrade."
        )
    return membership


def _validate_acceptance(accept_terms: bool, terms_version: str) -> None:
    errors = {}
    if accept_terms is not True:
        errors["accept_terms"] = ["You must accept the terms to upgrade."]
    if terms_version != TERMS_VERSION:
        errors["terms_version"] = [f"The current terms version is {TERMS_VERSION}."]
    if errors:
        raise InvalidRequest("The upgrade was not confirmed.", details=errors)


def _record(
    *, sub: Subscription, membership: Membership, quote: Quote, channel: str, ip, user_agent
) -> ConsentRecord:
    record = ConsentRecord.objects.create(
        workspace=sub.workspace,
        workspace_name=sub.workspace.name,
        user=membership.user,
        user_email=membership.user.email,
        role=membership.role,
        from_tier=quote.from_tier,
        to_tier=quote.to_tier,
        price_shown=quote.to_tier.monthly_price,
        currency=quote.to_tier.currency,
        included_tokens_shown=quote.to_tier.included_tokens,
        amount_due_now_shown=quote.amount_due_now,
        terms_version=quote.terms_version,
        terms_text=quote.terms_text,
        terms_sha256=quote.terms_sha256,
        channel=channel,
        ip_address=ip or None,
        user_agent=(user_agent or "")[:500],
    )
    audit.record(
        workspace=sub.workspace,
        actor=membership.user,
        action="consent.recorded",
        target=f"{quote.from_tier or 'Free'} → {quote.to_tier}",
        consent_id=record.pk,
        price_shown=str(record.price_shown),
        terms_version=record.terms_version,
    )
    return record


def _change_stripe_subscription(sub: Subscription, quote: Quote):
    period = int(sub.current_period_start.timestamp()) if sub.current_period_start else 0
    key = f"tollgate-upgrade-{sub.stripe_subscription_id}-{quote.to_tier.slug}-{period}"
    items: list[SubscriptionUpdateParamsItem] = [
        {"id": sub.stripe_item_id, "price": quote.to_tier.stripe_price_id}
    ]
    try:
        return stripe_api.client().v1.subscriptions.update(
            sub.stripe_subscription_id,
            {
                "items": items,
                "proration_behavior": "always_invoice",
                "proration_date": quote.proration_date,
                "payment_behavior": "pending_if_incomplete",
            },
            {"idempotency_key": key},
        )
    except stripe.StripeError as exc:
        logger.warning("stripe upgrade failed: %s", exc.__class__.__name__)
        raise StripeFailed(
            "The payment provider refused the plan change, so nothing was changed or charged."
        ) from exc


def upgrade_consent(
    *,
    workspace: Workspace,
    membership: Membership | None,
    to_tier: Tier,
    accept_terms: bool,
    terms_version: str,
    proration_date: int | None,
    channel: str,
    ip: str | None,
    user_agent: str,
    success_url: str = "",
    cancel_url: str = "",
) -> UpgradeResult:
    manager = _require_manager(membership)
    _validate_acceptance(accept_terms, terms_version)
    with transaction.atomic():
        # The row lock makes two admins confirming at once produce one upgrade.
        sub = subscription_row(workspace, lock=True)
        current, paid = effective_tier(sub, clock.now())
        if not paid and (url := open_checkout_url(sub, to_tier)):
            # Another admin already consented and opened Checkout: pay there.
            return UpgradeResult(None, sub, "checkout_required", checkout_url=url)
        if paid and (sub.pending_tier_id == to_tier.pk or (current and current.pk == to_tier.pk)):
            return UpgradeResult(consent=None, subscription=sub, outcome="already_requested")
        quote = upgrade_quote(workspace=workspace, to_tier=to_tier, proration_date=proration_date)
        consent = _record(
            sub=sub,
            membership=manager,
            quote=quote,
            channel=channel,
            ip=ip,
            user_agent=user_agent,
        )
        if quote.via_checkout:
            url = checkout_start(
                workspace=workspace,
                tier=to_tier,
                email=manager.user.email,
                success_url=success_url,
                cancel_url=cancel_url,
            )
            return UpgradeResult(consent, sub, "checkout_required", checkout_url=url)
        stripe_sub = _change_stripe_subscription(sub, quote)
        _apply(sub, stripe_sub)
        sub.save()
    outcome = "upgraded" if sub.tier_id == to_tier.pk else "pending_payment"
    return UpgradeResult(consent=consent, subscription=sub, outcome=outcome)


def proration_date_is_fresh(value: int) -> bool:
    """A quote is honoured for an hour; older forms get a fresh quote."""
    age = clock.now() - dt.datetime.fromtimestamp(value, tz=dt.UTC)
    return dt.timedelta(0) <= age <= dt.timedelta(hours=1)

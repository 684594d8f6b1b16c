"""Billing pages: public plans, the workspace's billing page, the upgrade consent
page, Checkout/Portal redirects, cancel and downgrade."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import Perm
from billing import selectors, stripe_api
from billing.limits import effective_tier
from billing.money import format_money
from billing.services import subscriptions as subs
from billing.services.upgrades import proration_date_is_fresh, upgrade_consent, upgrade_quote
from billing.terms import TERMS_VERSION
from config import clock
from config.errors import ApiError

QUOTE_SALT = "billing.upgrade.quote"


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _workspace_or_redirect(request: HttpRequest):
    if request.workspace is None:
        messages.info(request, "Create or choose a workspace first.")
        return redirect("accounts:dashboard")
    return None


def plans(request: HttpRequest) -> HttpResponse:
    current = None
    if getattr(request, "workspace", None) is not None:
        sub = selectors.subscription(request.workspace)

        current, _paid = effective_tier(sub, clock.now())
    return render(
        request,
        "billing/plans.html",
        {
            "tiers": selectors.public_tiers(),
            "current_tier": current,
            "stripe_configured": stripe_api.is_configured(),
        },
    )


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    if (response := _workspace_or_redirect(request)) is not None:
        return response
    if request.GET.get("session_id") and stripe_api.is_configured():
        # Back from Checkout: mirror now instead of waiting for the webhook.
        try:
            sub = subs.checkout_complete(session_id=request.GET["session_id"])
        except Exception:  # the webhook will catch up; the page must still render
            messages.warning(request, "Stripe is still confirming your payment.")
        else:
            if sub is not None and sub.tier is not None and sub.status in ("active", "trialing"):
                messages.success(
                    request, f"Payment received — this workspace is on {sub.tier.name} now."
                )
            else:
                messages.info(request, "Stripe is still confirming your payment.")
        return redirect("billing:overview")
    ws = request.workspace
    usage = selectors.period_usage(ws)
    sub = selectors.subscription(ws)
    membership = request.membership
    can_manage = membership.can(Perm.MANAGE_BILLING)
    can_view = membership.can(Perm.VIEW_BILLING)
    current = selectors.tier_by_slug(usage.limits.plan) or None
    next_tier = selectors.tier_by_slug(usage.limits.next_plan or "")
    cheaper = [
        t
        for t in selectors.public_tiers()
        if current and t.monthly_price < current.monthly_price and sub and sub.is_paid
    ]
    return render(
        request,
        "billing/overview.html",
        {
            "usage": usage,
            "sub": sub,
            "current_tier": current,
            "next_tier": next_tier,
            "cheaper_tiers": cheaper,
            "can_manage": can_manage,
            "can_view": can_view,
            "consents": selectors.consent_history(ws)[:20] if can_view else [],
            "invoices": selectors.invoices(ws)[:12] if can_view else [],
            "credit_notes": selectors.credit_notes(ws)[:12] if can_view else [],
            "can_edit_details": membership.can(Perm.EDIT_BILLING_DETAILS),
            "overage_estimate": format_money(
                selectors.overage_estimate(usage), current.currency if current else "usd"
            ),
            "stripe_configured": stripe_api.is_configured(),
            "managers": _managers(request),
            "spend_cap": _spend_cap(sub, current),
        },
    )


def _spend_cap(sub, tier):
    if sub is not None and sub.overage_spend_cap is not None:
        return sub.overage_spend_cap
    return tier.overage_spend_cap if tier is not None else None


def _managers(request: HttpRequest) -> list[str]:
    from billing.services.notifications import billing_managers

    return billing_managers(request.workspace)


def _signed_quote(quote) -> str:
    return signing.dumps(
        {
            "plan": quote.to_tier.slug,
            "proration_date": quote.proration_date,
            "sha": quote.terms_sha256,
        },
        salt=QUOTE_SALT,
    )


@login_required
@require_http_methods(["GET", "POST"])
def upgrade(request: HttpRequest) -> HttpResponse:
    if (response := _workspace_or_redirect(request)) is not None:
        return response
    ws = request.workspace
    usage = selectors.period_usage(ws)
    slug = request.POST.get("plan") or request.GET.get("plan") or usage.limits.next_plan or ""
    tier = selectors.tier_by_slug(slug)
    context = {
        "usage": usage,
        "tier": tier,
        "can_manage": request.membership.can(Perm.MANAGE_BILLING),
        "managers": _managers(request),
        "stripe_configured": stripe_api.is_configured(),
        "tiers": selectors.public_tiers(),
        "terms_version": TERMS_VERSION,
    }
    if tier is None or not context["stripe_configured"] or not context["can_manage"]:
        return render(request, "billing/upgrade.html", context)
    if request.method == "POST":
        return _confirm_upgrade(request, tier, context)
    try:
        quote = upgrade_quote(workspace=ws, to_tier=tier)
    except ApiError as exc:
        context["error"] = exc.message
        return render(request, "billing/upgrade.html", context)
    context.update(quote=quote, signed_quote=_signed_quote(quote))
    return render(request, "billing/upgrade.html", context)


def _confirm_upgrade(request: HttpRequest, tier, context: dict) -> HttpResponse:
    try:
        shown = signing.loads(request.POST.get("quote", ""), salt=QUOTE_SALT, max_age=3600)
    except signing.BadSignature:
        shown = None
    if (
        not shown
        or shown["plan"] != tier.slug
        or not proration_date_is_fresh(shown["proration_date"])
    ):
        messages.warning(request, "The price quote expired; please review it again.")
        return redirect(f"{reverse('billing:upgrade')}?plan={tier.slug}")
    quote = upgrade_quote(
        workspace=request.workspace, to_tier=tier, proration_date=shown["proration_date"]
    )
    if quote.terms_sha256 != shown["sha"]:
        messages.warning(request, "The price or terms changed since you opened this page.")
        return redirect(f"{reverse('billing:upgrade')}?plan={tier.slug}")
    overview_url = request.build_absolute_uri(reverse("billing:overview"))
    try:
        result = upgrade_consent(
            workspace=request.workspace,
            membership=request.membership,
            to_tier=tier,
            accept_terms=request.POST.get("accept_terms") == "on",
            terms_version=request.POST.get("terms_version", ""),
            proration_date=shown["proration_date"],
            channel="web",
            ip=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            success_url=f"{overview_url}?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=request.build_absolute_uri(f"{reverse('billing:upgrade')}?plan={tier.slug}"),
        )
    except ApiError as exc:
        context.update(quote=quote, signed_quote=_signed_quote(quote), error=exc.message)
        if exc.details.get("accept_terms"):
            context["error"] = "Tick the box to confirm you accept the terms."
        return render(request, "billing/upgrade.html", context, status=exc.status)
    if result.outcome == "checkout_required":
        return redirect(result.checkout_url)
    text = {
        "upgraded": f"Upgraded to {tier.name}. The new quota applies now.",
        "pending_payment": (
            f"Your consent is recorded. {tier.name} starts as soon as Stripe confirms the payment."
        ),
        "already_requested": f"This workspace is already on (or moving to) {tier.name}.",
    }[result.outcome]
    messages.success(request, text)
    return redirect("billing:overview")


def _manager_action(request: HttpRequest):
    if (response := _workspace_or_redirect(request)) is not None:
        return response
    if not request.membership.can(Perm.MANAGE_BILLING):
        messages.error(request, "Only owners and admins can change billing.")
        return redirect("billing:overview")
    if not stripe_api.is_configured():
        messages.error(request, "Payments are not configured on this server.")
        return redirect("billing:overview")
    return None


@login_required
@require_POST
def portal(request: HttpRequest) -> HttpResponse:
    if (response := _manager_action(request)) is not None:
        return response
    try:
        url = subs.portal_url(
            workspace=request.workspace,
            return_url=request.build_absolute_uri(reverse("billing:overview")),
        )
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("billing:overview")
    return redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest) -> HttpResponse:
    if (response := _manager_action(request)) is not None:
        return response
    sub = selectors.subscription(request.workspace)
    if request.method == "GET":
        return render(request, "billing/cancel.html", {"sub": sub})
    try:
        sub = subs.subscription_cancel(workspace=request.workspace)
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("billing:overview")
    end = sub.current_period_end
    messages.success(
        request,
        f"Cancelled. Your plan stays until {end:%d %b %Y} and then moves to the free tier."
        if end
        else "Cancelled.",
    )
    return redirect("billing:overview")


@login_required
@require_POST
def downgrade(request: HttpRequest) -> HttpResponse:
    if (response := _manager_action(request)) is not None:
        return response
    tier = selectors.tier_by_slug(request.POST.get("plan", ""))
    if tier is None:
        messages.error(request, "Choose a plan to move to.")
        return redirect("billing:overview")
    try:
        sub = subs.subscription_downgrade(workspace=request.workspace, tier=tier)
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("billing:overview")
    when = f"{sub.current_period_end:%d %b %Y}" if sub.current_period_end else "the period end"
    messages.success(request, f"You will move to {tier.name} on {when}.")
    return redirect("billing:overview")


@login_required
@require_POST
def spend_cap(request: HttpRequest) -> HttpResponse:
    if (response := _workspace_or_redirect(request)) is not None:
        return response
    if not request.membership.can(Perm.MANAGE_BILLING):
        messages.error(request, "Only owners and admins can change the spend cap.")
        return redirect("billing:overview")
    raw = request.POST.get("cap", "").strip()
    try:
        cap = Decimal(raw) if raw else None
        if cap is not None and not cap.is_finite():
            raise InvalidOperation
        subs.spend_cap_set(workspace=request.workspace, cap=cap, actor=request.user)
    except InvalidOperation:
        messages.error(request, "Enter the cap as an amount, e.g. 50.00, or leave it empty.")
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Spend cap saved. It applies to the next request.")
    return redirect("billing:overview")

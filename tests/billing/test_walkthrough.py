"""The signature flow in a real browser against the real ASGI app, the fake
upstream and the fake Stripe (which delivers signed webhooks to the app):
use up the free quota → 402 in the UI → consent → upgraded → it works again."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from billing.models import ConsentRecord, StripeEvent, Subscription
from billing.services.catalog import tier_sync_to_stripe
from tests.billing.conftest import make_tiers

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXT = (
    "Tollgate meters every token through one operator key. When a plan's included "
    "tokens run out it stops and asks an owner or admin before upgrading."
)


def _login(page, live_url: str, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_url}])


def _summarize(page, live_url: str) -> str:
    """Submit the summarize form once; returns "ok" or the error text shown."""
    page.goto(f"{live_url}/summarize/")
    page.fill("#text", TEXT)
    page.select_option("select[name=length]", "short")
    page.click("#summarize-submit")
    page.wait_for_selector(
        "[data-testid=summary-result]:not([hidden]), [data-testid=summary-error]:not([hidden])"
    )
    if page.is_visible("[data-testid=summary-result]"):
        return "ok"
    return page.inner_text("[data-testid=summary-error]")


def test_free_quota_402_consent_upgrade_and_it_works_again(
    metered, fake_stripe, settings, page, make_member, workspace, owner
):
    tiers = {slug: tier_sync_to_stripe(tier=t) for slug, t in make_tiers(500).items()}
    member = make_member(workspace=workspace, role="member")
    fake_stripe.add_webhook_endpoint(f"{metered}/stripe/webhook/", settings.STRIPE_WEBHOOK_SECRET)
    _login(page, metered, owner)

    # Use up the free quota until the meter refuses with 402 in the page.
    outcomes: list[str] = []
    while len(outcomes) < 6 and (not outcomes or outcomes[-1] == "ok"):
        outcomes.append(_summarize(page, metered))  # ~120 tokens each
    refused = [o for o in outcomes if o != "ok"]
    assert outcomes[0] == "ok" and refused, outcomes
    assert "upgrade" in refused[0]
    link = page.get_by_test_id("summary-error").get_by_test_id("upgrade-link")
    assert link.get_attribute("href").endswith("/billing/upgrade/?plan=pro")
    # Owners and admins get one email for the period (not members), and a banner.
    quota_mails = [m for m in mail.outbox if "upgrade needs your consent" in m.subject]
    assert len(quota_mails) == 1 and quota_mails[0].to == [owner.email]
    assert member.user.email not in quota_mails[0].to
    page.goto(f"{metered}/billing/")
    assert page.is_visible("[data-testid=quota-banner]")

    # The consent page: price, included tokens, charged now, terms; tick and confirm.
    page.click("[data-testid=upgrade-link]")
    assert "29.00" in page.inner_text("[data-testid=new-price]")
    assert "1,000,000" in page.inner_text("[data-testid=new-tokens]")
    assert "$29.00" in page.inner_text("[data-testid=charged-now]")
    page.check("[data-testid=accept-terms]")
    page.click("[data-testid=confirm-upgrade]")

    # Stripe's hosted checkout; paying sends signed webhooks back to the app.
    page.wait_for_url(f"{fake_stripe.url}/c/pay/**")
    page.get_by_role("button", name="Pay $29.00").click()
    page.wait_for_url(f"{metered}/billing/")
    assert page.inner_text("[data-testid=plan-name]") == "Pro"
    assert not page.is_visible("[data-testid=quota-banner]")
    assert "Free → Pro" in page.inner_text("[data-testid=consent-history]")

    assert _summarize(page, metered) == "ok"

    sub = Subscription.objects.get(workspace=workspace)
    assert (sub.tier, sub.status) == (tiers["pro"], "active")
    consent = ConsentRecord.objects.get()
    assert (consent.user, consent.to_tier) == (owner, tiers["pro"])
    assert "HeadlessChrome" in consent.user_agent or "Chrome" in consent.user_agent
    assert StripeEvent.objects.filter(type="checkout.session.completed").count() == 1

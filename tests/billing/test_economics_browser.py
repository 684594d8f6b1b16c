"""In a real browser against the real ASGI app: an operator reads the margin
page and a reconciliation record; a past_due owner sees the dunning banner and
pays through the (fake) Stripe Billing Portal, after which it is gone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from billing.models import ReconciliationLine, ReconciliationRun, Subscription
from billing.services.catalog import tier_sync_to_stripe
from tests.billing.conftest import make_tiers
from tests.billing.test_flow import subscribe
from tests.billing.test_margin import _invoice, _usage

pytestmark = [pytest.mark.browser]
ARTIFACTS = Path("var/test-artifacts")


def test_operator_reads_margin_and_a_reconciliation_record(live_url, page, login_browser):
    from accounts.models import Workspace

    tiers = make_tiers()
    acme = Workspace.objects.create(name="Acme")
    Subscription.objects.create(workspace=acme, tier=tiers["pro"], status="active")
    _invoice(acme, "29.00", date(2026, 11, 3), tier=tiers["pro"])
    _usage(acme, date(2026, 11, 5), "summarize", 600_000, "0.80")
    run = ReconciliationRun.objects.create(
        day=date(2026, 11, 5),
        status="drift",
        grouped_by="day x model",
        our_requests=10,
        their_requests=9,
        ledger_cost=Decimal("0.80"),
        upstream_cost=Decimal("0.88"),
        max_drift_percent=Decimal("10.0000"),
        flagged_events=0,
    )
    ReconciliationLine.objects.create(
        run=run,
        model="gpt-4o-mini",
        our_requests=10,
        their_requests=9,
        our_input_tokens=1000,
        their_input_tokens=1100,
        ledger_cost=Decimal("0.80"),
        upstream_cost=Decimal("0.88"),
        drift_percent=Decimal("10.0000"),
    )
    operator = get_user_model().objects.create_user(
        email="ops@example.com", password="x", is_staff=True
    )
    login_browser(page, live_url, operator)

    page.goto(f"{live_url}/operator/margin/?month=2026-11")
    total = page.inner_text("[data-testid=margin-total]")
    # 29.00 revenue - 0.80 * (0.88 / 0.80) cost = 28.12
    assert "28.12" in total and "1 reconciled day" in total
    assert "Acme" in page.inner_text("[data-testid=margin-workspaces]")
    assert page.evaluate("() => window.marginChart.data.labels.length") == 12
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "margin.png"), full_page=True)

    page.get_by_role("link", name="Reconciliation").first.click()
    page.get_by_role("link", name="2026-11-05").click()
    assert "Drift over the threshold" in page.inner_text("[data-testid=reconciliation-status]")
    lines = page.inner_text("[data-testid=reconciliation-lines]")
    assert "gpt-4o-mini" in lines and "-1" in lines and "100" in lines
    page.screenshot(path=str(ARTIFACTS / "reconciliation.png"), full_page=True)


def test_past_due_owner_sees_the_banner_and_pays_in_the_portal(
    live_url, fake_stripe, settings, page, login_browser, workspace, owner, make_member
):
    tiers = {slug: tier_sync_to_stripe(tier=t) for slug, t in make_tiers().items()}
    member = make_member(workspace=workspace, role="member")
    sub = subscribe(workspace, tiers["pro"], fake_stripe)
    fake_stripe.add_webhook_endpoint(f"{live_url}/stripe/webhook/", settings.STRIPE_WEBHOOK_SECRET)
    fake_stripe.set_card_failing(sub.stripe_customer_id, True)
    fake_stripe.advance(sub.stripe_subscription_id)
    assert fake_stripe.flush()
    assert Subscription.objects.get(pk=sub.pk).status == "past_due"

    login_browser(page, live_url, member.user)  # members aren't shown the banner
    page.goto(f"{live_url}/")
    assert not page.is_visible("[data-testid=dunning-banner]")

    page.context.clear_cookies()
    login_browser(page, live_url, owner)
    page.goto(f"{live_url}/billing/")
    banner = page.inner_text("[data-testid=dunning-banner]")
    assert "A payment for this workspace failed" in banner
    page.click("[data-testid=dunning-pay]")
    page.wait_for_url(f"{fake_stripe.url}/p/**")
    page.get_by_role("button", name="Update card").click()
    assert fake_stripe.flush()
    assert Subscription.objects.get(pk=sub.pk).status == "active"
    page.goto(f"{live_url}/billing/")
    assert not page.is_visible("[data-testid=dunning-banner]")

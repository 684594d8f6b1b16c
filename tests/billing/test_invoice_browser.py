"""A finance member in a real browser: Stripe's webhooks reach the live app, the
member fixes the billing details, opens the invoice and downloads its PDF."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from billing.models_invoices import BillingDetails, Invoice
from billing.services.catalog import tier_sync_to_stripe
from billing.services.subscriptions import ensure_customer
from tests.billing.conftest import make_tiers
from tests.billing.test_walkthrough import _login

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(django_settings.BASE_DIR) / "var" / "test-artifacts"


def wait_for(condition, page, timeout_ms: int = 30_000) -> None:
    for _ in range(timeout_ms // 200):
        if condition():
            return
        page.wait_for_timeout(200)
    raise AssertionError("timed out")


def test_finance_member_edits_details_opens_invoice_and_downloads_its_pdf(
    live_url, fake_stripe, settings, page, make_member, workspace
):
    tiers = {slug: tier_sync_to_stripe(tier=t) for slug, t in make_tiers().items()}
    fake_stripe.add_webhook_endpoint(f"{live_url}/stripe/webhook/", settings.STRIPE_WEBHOOK_SECRET)
    finance = make_member(workspace=workspace, role="finance")
    customer = ensure_customer(workspace=workspace, email="billing@example.com")
    fake_stripe.client().v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": tiers["pro"].stripe_price_id}],
            "metadata": {"workspace_id": str(workspace.pk)},
        }
    )
    fake_stripe.flush()
    wait_for(lambda: Invoice.objects.filter(workspace=workspace, pdf_sha256__gt="").exists(), page)
    invoice = Invoice.objects.get(workspace=workspace)

    _login(page, live_url, finance.user)
    page.goto(f"{live_url}/billing/details/")
    page.fill("input[name=legal_name]", "Acme Analytics GmbH")
    page.fill("input[name=country]", "DE")
    page.fill("input[name=tax_id]", "DE 123")  # wrong: the form says so
    page.click("[data-testid=save-billing-details]")
    assert "not a valid tax id" in page.inner_text("main")
    page.fill("input[name=tax_id]", "DE811569869")
    page.click("[data-testid=save-billing-details]")
    page.wait_for_url(f"{live_url}/billing/details/")
    assert BillingDetails.objects.get(workspace=workspace).tax_id == "DE811569869"
    stripe_ids = fake_stripe.client().v1.customers.tax_ids.list(customer).data
    assert [t.value for t in stripe_ids] == ["DE811569869"]

    page.goto(f"{live_url}/billing/")
    page.click(f"[data-testid=invoices] >> text={invoice.number}")
    page.wait_for_selector("[data-testid=invoice-lines]")
    assert "$29.00" in page.inner_text("[data-testid=invoice-total]")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "invoice-page.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("[data-testid=invoice-pdf]")
    content = Path(download_info.value.path()).read_bytes()
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == invoice.pdf_sha256

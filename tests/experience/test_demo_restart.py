"""bin/run's demo Stripe across a restart: a customer who paid stays on the paid
plan, its invoice is still listed, and the Stripe pages (fixed port) still open.
The fake Stripe runs as the run command runs it (`--state-file`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from billing.demo import _forget_vanished_customers
from billing.models import Subscription
from billing.services.catalog import tier_sync_to_stripe
from tests.billing.conftest import make_tiers
from tests.fixtures.stripe import FAKE_STRIPE_WEBHOOK_SECRET

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_stripe(port: int, state_file: Path, webhook_url: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "standins.fake_stripe",
            "--port",
            str(port),
            "--state-file",
            str(state_file),
            "--webhook-url",
            webhook_url,
            "--webhook-secret",
            FAKE_STRIPE_WEBHOOK_SECRET,
        ],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fake Stripe did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)


def test_a_paid_plan_survives_a_restart_of_the_demo_stripe(
    metered, signed_in_page, owner, workspace, settings, tmp_path, sized_page, shoot
):
    port = _free_port()
    state_file = tmp_path / "demo-stripe.json"
    webhook = f"{metered}/stripe/webhook/"
    settings.STRIPE_SECRET_KEY = "sk_test_demo_fake_stripe"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
    settings.STRIPE_WEBHOOK_SECRET = FAKE_STRIPE_WEBHOOK_SECRET
    settings.STRIPE_DEMO_MODE = True
    stripe = _start_stripe(port, state_file, webhook)
    try:
        for tier in make_tiers(500).values():
            tier_sync_to_stripe(tier=tier)
        page = signed_in_page(owner)
        page.goto(f"{metered}/billing/upgrade/?plan=pro")
        page.check("[data-testid=accept-terms]")
        page.click("[data-testid=confirm-upgrade]")
        page.wait_for_url(f"http://127.0.0.1:{port}/c/pay/**")
        page.get_by_role("button", name="Pay $29.00").click(timeout=60_000)  # waits for webhooks
        page.wait_for_url(f"{metered}/billing/**", timeout=60_000)
        expect(page.get_by_test_id("plan-name")).to_have_text("Pro")
        expect(page.get_by_test_id("flash-messages")).to_contain_text("Payment received")

        # The run command restarts: the fake Stripe stops and comes back.
        _stop(stripe)
        stripe = _start_stripe(port, state_file, webhook)
        assert _forget_vanished_customers() == []  # the seed finds the customer
        sub = Subscription.objects.get(workspace=workspace)
        assert sub.tier.slug == "pro" and sub.status == "active"

        page.goto(f"{metered}/billing/")
        expect(page.get_by_test_id("plan-name")).to_have_text("Pro")
        shoot(page, "billing-after-restart")
        # The invoice is still listed and opens; the customer still exists at
        # Stripe, so "Manage payment and invoices" opens its portal (same port).
        invoices = page.get_by_test_id("invoices")
        expect(invoices.locator("tbody tr")).to_have_count(1)
        invoices.locator("tbody tr a").first.click()
        expect(page.locator("main")).to_contain_text("29.00")
        page.goto(f"{metered}/billing/")
        page.get_by_test_id("portal-button").click()
        page.wait_for_url(f"http://127.0.0.1:{port}/p/**")
        expect(page.locator("body")).to_contain_text("Pro")
    finally:
        _stop(stripe)

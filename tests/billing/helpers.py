"""Real signed webhooks: events taken from the fake Stripe, signed the way its
webhook deliveries are, and POSTed to /stripe/webhook/ for the SDK to verify."""

from __future__ import annotations

import re

import httpx
from django.conf import settings


def deliver(client, fake, event: dict, secret: str | None = None):
    body, signature = fake.signed_payload(event, secret or settings.STRIPE_WEBHOOK_SECRET)
    return client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


def deliver_all(client, fake, capture, *, types: tuple[str, ...] | None = None) -> list[dict]:
    """Deliver every event so far (oldest first); `capture` runs the on-commit tasks."""
    events = [e for e in fake.events() if types is None or e["type"] in types]
    for event in events:
        with capture(execute=True):
            assert deliver(client, fake, event).status_code == 200
    return events


def pay_checkout(url: str, card: str = "4242424242424242") -> httpx.Response:
    """Press 'Pay' on the fake's hosted Checkout page (no webhook endpoint needed)."""
    session_path = re.search(r"/c/pay/[A-Za-z0-9_]+", url).group(0)
    base = url.split("/c/pay/")[0]
    return httpx.post(
        base + session_path,
        data={"card": card, "email": "payer@example.com"},
        follow_redirects=False,
        timeout=30,
    )

"""Dunning end to end: the fake Stripe delivers signed webhooks to the real
ASGI app; feature calls go through the real meter with an API key. Access
follows DESIGN.md's table (active → past_due → unpaid → paid), each email once."""

from __future__ import annotations

from datetime import timedelta

import httpx
from django.core import mail

from billing.models import DunningState, EconomicsSettings, Subscription
from billing.services.catalog import tier_sync_to_stripe
from billing.services.dunning import reminders_due
from config import clock
from tests.billing.conftest import make_tiers
from tests.billing.test_flow import subscribe

TEXT = "Dunning keeps access while a payment is retried. " * 5


def _call(base: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/summaries",
        json={"text": TEXT, "length": "short"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=20,
    )


def _mails(word: str) -> list:
    return [m for m in mail.outbox if word in m.subject]


def test_active_past_due_unpaid_paid_changes_access_as_the_table_says(
    metered, fake_stripe, settings, workspace, owner, make_member, make_key
):
    tiers = {slug: tier_sync_to_stripe(tier=t) for slug, t in make_tiers().items()}
    finance = make_member(workspace=workspace, role="finance")
    member = make_member(workspace=workspace, role="member")
    _key, secret = make_key(member)
    sub = subscribe(workspace, tiers["pro"], fake_stripe)
    fake_stripe.add_webhook_endpoint(f"{metered}/stripe/webhook/", settings.STRIPE_WEBHOOK_SECRET)
    assert _call(metered, secret).status_code == 201  # active: full

    # The renewal's payment fails: past_due keeps full access; one email to the
    # owners/admins/finance with the way to pay.
    fake_stripe.set_card_failing(sub.stripe_customer_id, True)
    fake_stripe.advance(sub.stripe_subscription_id)
    assert fake_stripe.flush()
    sub.refresh_from_db()
    assert sub.status == "past_due"
    state = DunningState.objects.get(workspace=workspace)
    assert state.past_due_since is not None and not state.refused
    assert _call(metered, secret).status_code == 201
    failed = _mails("Payment failed")
    assert len(failed) == 1
    assert sorted(failed[0].to) == sorted([owner.email, finance.user.email])
    assert "/billing/#pay" in failed[0].body
    for event in fake_stripe.events("invoice.payment_failed"):
        fake_stripe.resend(event["id"])  # a replayed webhook: still one email
    assert fake_stripe.flush() and len(_mails("Payment failed")) == 1

    # The reminder after N days (operator setting), once.
    EconomicsSettings.objects.update_or_create(pk=1, defaults={"dunning_reminder_days": 3})
    with clock.travel(clock.now() + timedelta(days=2)):
        assert reminders_due() == 0
    with clock.travel(clock.now() + timedelta(days=4)):
        assert reminders_due() == 1
        assert reminders_due() == 0
    assert len(_mails("Reminder")) == 1

    # Stripe's retries run out: unpaid refuses feature calls with 402 payment_overdue,
    # while billing stays reachable for the owner.
    fake_stripe.exhaust_retries(sub.stripe_subscription_id)
    assert fake_stripe.flush()
    refused = _call(metered, secret)
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "payment_overdue"
    assert error["details"] == {
        "status": "unpaid",
        "billing_url": settings.SITE_URL.rstrip("/") + "/billing/",
    }
    assert len(_mails("paused")) == 1
    assert Subscription.objects.get(workspace=workspace).status == "unpaid"

    # The card is fixed and the open invoice paid (invoice.paid): access at once.
    fake_stripe.set_card_failing(sub.stripe_customer_id, False)
    client = fake_stripe.client()
    query = {"customer": sub.stripe_customer_id, "status": "open"}
    (open_invoice,) = client.v1.invoices.list(query)
    client.v1.invoices.pay(open_invoice.id)
    assert fake_stripe.flush()
    assert Subscription.objects.get(workspace=workspace).status == "active"
    state.refresh_from_db()
    assert (state.status, state.refused, state.past_due_since) == ("active", False, None)
    assert _call(metered, secret).status_code == 201
    # Each email exactly once over the whole episode.
    assert [len(_mails(w)) for w in ("Payment failed", "Reminder", "paused")] == [1, 1, 1]

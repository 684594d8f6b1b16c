"""Subscriptions, consent and webhooks: the real stripe SDK against the fake
Stripe server, and real signed webhooks verified by the SDK."""

from __future__ import annotations

from decimal import Decimal

from billing.limits import workspace_limits
from billing.models import ConsentRecord, Invoice, StripeEvent, Subscription
from billing.services.subscriptions import ensure_customer, subscription_sync
from billing.terms import TERMS_VERSION, sha256
from tests.billing.helpers import deliver, deliver_all, pay_checkout


def subscribe(workspace, tier, fake) -> Subscription:
    """A paid subscription made straight through the API (the card works)."""
    customer = ensure_customer(workspace=workspace, email="billing@example.com")
    stripe_sub = fake.client().v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": tier.stripe_price_id}],
            "metadata": {"workspace_id": str(workspace.pk)},
        }
    )
    return subscription_sync(stripe_subscription_id=stripe_sub.id)


def api_upgrade(client, plan: str):
    return client.post(
        "/api/v1/billing/upgrades",
        {"plan": plan, "accept_terms": True, "terms_version": TERMS_VERSION},
        content_type="application/json",
        headers={"User-Agent": "pytest-agent"},
    )


def test_consent_then_checkout_and_a_webhook_replayed_20_times_has_one_effect(
    client, owner, workspace, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    page = client.get("/billing/upgrade/?plan=pro")
    assert page.status_code == 200
    quote = page.context["quote"]
    assert quote.amount_due_now == Decimal("29.00") and quote.via_checkout
    shown = page.content.decode()
    assert "1,000,000" in shown and "29.00" in shown and TERMS_VERSION in shown

    # Not ticking the box changes nothing.
    form = {
        "plan": "pro",
        "quote": page.context["signed_quote"],
        "terms_version": TERMS_VERSION,
    }
    assert client.post("/billing/upgrade/", form).status_code == 400
    assert not ConsentRecord.objects.exists()

    response = client.post(
        "/billing/upgrade/", {**form, "accept_terms": "on"}, headers={"User-Agent": "agent/1"}
    )
    assert response.status_code == 302 and "/c/pay/" in response.url
    consent = ConsentRecord.objects.get()
    assert (consent.user, consent.from_tier.slug, consent.to_tier.slug) == (owner, "free", "pro")
    assert consent.terms_sha256 == sha256(quote.terms_text)
    assert (consent.ip_address, consent.user_agent) == ("127.0.0.1", "agent/1")
    assert workspace_limits(workspace).plan == "free"  # nothing until Stripe confirms

    assert pay_checkout(response.url).status_code == 303
    completed = stripe_env.events("checkout.session.completed")[0]
    for _ in range(20):
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(client, stripe_env, completed).status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.attempts) == (completed["id"], 1)
    assert stored.processed_at is not None
    sub = Subscription.objects.get(workspace=workspace)
    assert (sub.tier.slug, sub.status) == ("pro", "active")
    assert workspace_limits(workspace).plan == "pro"
    assert workspace_limits(workspace).period_start == sub.current_period_start

    deliver_all(client, stripe_env, django_capture_on_commit_callbacks)
    invoice = Invoice.objects.get(workspace=workspace)
    assert (invoice.status, invoice.total) == ("paid", Decimal("29.00"))
    billing_page = client.get("/billing/").content.decode()
    assert "Pro" in billing_page and owner.email in billing_page  # consent history


def test_events_out_of_order_end_in_the_right_state(
    client, owner, workspace, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    subscribe(workspace, stripe_tiers["pro"], stripe_env)
    client.force_login(owner)
    assert api_upgrade(client, "team").json()["outcome"] == "upgraded"
    Subscription.objects.filter(workspace=workspace).update(tier=None, status="free")  # forget
    # Newest first: every handler re-fetches, so older events can't roll state back.
    for event in reversed(stripe_env.events()):
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(client, stripe_env, event).status_code == 200
    sub = Subscription.objects.get(workspace=workspace)
    assert (sub.tier.slug, sub.status) == ("team", "active")

    # Cancel at period end; the period ends (fake clock) and Stripe deletes it.
    assert client.post("/billing/cancel/").status_code == 302
    assert workspace_limits(workspace).plan == "team"  # paid-for period still runs
    stripe_env.advance(sub.stripe_subscription_id)
    events = stripe_env.events()
    deleted = [e for e in events if e["type"] == "customer.subscription.deleted"]
    older = [e for e in events if e["type"] == "customer.subscription.updated"]
    for event in [*deleted, *older]:  # the deletion first, then stale updates
        with django_capture_on_commit_callbacks(execute=True):
            deliver(client, stripe_env, event)
    sub.refresh_from_db()
    assert (sub.status, sub.tier) == ("canceled", None)
    assert workspace_limits(workspace).plan == "free"


def test_bad_signature_changes_nothing(client, workspace, stripe_tiers, stripe_env):
    subscribe(workspace, stripe_tiers["pro"], stripe_env)
    event = stripe_env.events("customer.subscription.created")[0]
    response = deliver(client, stripe_env, event, secret="whsec_not_ours")
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_failed_payment_keeps_the_old_tier_until_stripe_confirms(
    client, owner, workspace, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    sub = subscribe(workspace, stripe_tiers["pro"], stripe_env)
    stripe_env.set_card_failing(sub.stripe_customer_id)
    client.force_login(owner)
    body = api_upgrade(client, "team").json()
    assert body["outcome"] == "pending_payment"
    assert body["subscription"]["plan"] == "pro"
    assert body["subscription"]["pending_plan"] == "team"
    assert body["consent"]["to_plan"] == "team"
    assert workspace_limits(workspace).plan == "pro"

    # The card is fixed and the open invoice paid: Stripe applies the pending
    # update, and its webhook brings the new quota.
    stripe_env.set_card_failing(sub.stripe_customer_id, False)
    open_invoice = stripe_env.events("invoice.payment_failed")[-1]["data"]["object"]["id"]
    stripe_env.client().v1.invoices.pay(open_invoice)
    with django_capture_on_commit_callbacks(execute=True):
        event = stripe_env.events("customer.subscription.updated")[-1]
        assert deliver(client, stripe_env, event).status_code == 200
    assert workspace_limits(workspace).plan == "team"


def test_member_sees_ask_an_admin(client, make_member, workspace, owner, stripe_tiers):
    member = make_member(workspace=workspace, role="member")
    client.force_login(member.user)
    page = client.get("/billing/upgrade/?plan=pro").content.decode()
    assert "Only the workspace" in page and owner.email in page
    assert 'name="accept_terms"' not in page


def test_not_an_upgrade_is_refused(client, owner, workspace, stripe_tiers, stripe_env):
    subscribe(workspace, stripe_tiers["pro"], stripe_env)
    client.force_login(owner)
    response = api_upgrade(client, "free")
    assert response.status_code == 400
    assert "downgrades take effect" in response.json()["error"]["message"]
    # Asking again for the plan already in place is a harmless no-op.
    again = api_upgrade(client, "pro")
    assert (again.status_code, again.json()["outcome"]) == (200, "already_requested")
    assert not ConsentRecord.objects.exists()

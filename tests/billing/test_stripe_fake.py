"""The fake Stripe server, driven through the real `stripe` SDK (StripeClient),
with webhooks verified by `stripe.Webhook.construct_event`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from tests.fixtures.stripe import FAKE_STRIPE_SECRET_KEY, FAKE_STRIPE_WEBHOOK_SECRET

DAY = 86400


@pytest.fixture
def client(fake_stripe, settings) -> stripe.StripeClient:
    """Built exactly as billing code should build its client: from settings."""
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base, "meter_events": base, "files": base, "connect": base},
        max_network_retries=0,
    )


class Receiver:
    """A webhook endpoint that verifies every delivery like our Django view will."""

    def __init__(self, secret: str) -> None:
        self.events: list = []
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = stripe.Webhook.construct_event(
                        body, self.headers.get("Stripe-Signature"), secret
                    )
                except stripe.SignatureVerificationError:
                    receiver.rejected += 1
                    self.send_response(400)
                else:
                    receiver.events.append(event)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stripe/webhook/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@pytest.fixture
def receiver(fake_stripe):
    rec = Receiver(FAKE_STRIPE_WEBHOOK_SECRET)
    fake_stripe.add_webhook_endpoint(rec.url, FAKE_STRIPE_WEBHOOK_SECRET)
    yield rec
    fake_stripe.flush()
    rec.httpd.shutdown()
    rec.httpd.server_close()


@pytest.fixture
def catalog(client):
    """Free, Pro ($20) and Team ($50) monthly prices, plus a metered overage price."""
    prod = client.v1.products.create(params={"name": "Pro", "metadata": {"tier": "pro"}})
    team = client.v1.products.create(params={"name": "Team"})
    meter = client.v1.billing.meters.create(
        params={
            "display_name": "Tokens",
            "event_name": "tollgate_tokens",
            "default_aggregation": {"formula": "sum"},
        }
    )

    def price(product, amount, key, **extra):
        return client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": "month"},
                "lookup_key": key,
                **extra,
            }
        )

    return {
        "pro": price(prod, 2000, "pro_monthly"),
        "team": price(team, 5000, "team_monthly"),
        "overage": client.v1.prices.create(
            params={
                "product": team.id,
                "currency": "usd",
                "unit_amount": 300,  # $3 per 1M tokens, rounded up
                "transform_quantity": {"divide_by": 1_000_000, "round": "up"},
                "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
                "lookup_key": "team_overage",
            }
        ),
        "meter": meter,
    }


def subscribe(client, price, **params):
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    return client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], **params}
    )


# --- auth and errors ------------------------------------------------------------------


def test_requires_a_test_mode_key(fake_stripe):
    with pytest.raises(stripe.AuthenticationError):
        fake_stripe.client("sk_live_" + "0" * 24).v1.customers.list()
    response = httpx.get(f"{fake_stripe.url}/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_errors_have_stripes_shape(client, fake_stripe):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"colour": "blue"})
    assert unknown.value.code == "parameter_unknown"
    assert unknown.value.param == "colour"
    response = httpx.post(
        f"{fake_stripe.url}/v1/prices",
        data={"currency": "usd"},
        headers={"Authorization": f"Bearer {FAKE_STRIPE_SECRET_KEY}"},
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) >= {"type", "code", "message", "param"}


# --- customers, products, prices -----------------------------------------------------


def test_customers(client):
    customer = client.v1.customers.create(
        params={"email": "a@example.com", "name": "Acme", "metadata": {"workspace_id": "42"}}
    )
    assert customer.id.startswith("cus_")
    assert customer.metadata["workspace_id"] == "42"
    updated = client.v1.customers.update(
        customer.id, params={"name": "Acme Ltd", "metadata": {"workspace_id": "", "plan": "x"}}
    )
    assert updated.name == "Acme Ltd"
    assert updated.metadata.to_dict() == {"plan": "x"}
    assert client.v1.customers.retrieve(customer.id).email == "a@example.com"
    found = client.v1.customers.search(params={"query": "metadata['plan']:'x'"})
    assert [c.id for c in found.data] == [customer.id]
    assert client.v1.customers.list(params={"email": "a@example.com"}).data[0].id == customer.id


def test_products_and_prices_with_lookup_keys(client):
    product = client.v1.products.create(params={"id": "tier_pro", "name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as dup:
        client.v1.products.create(params={"id": "tier_pro", "name": "Pro"})
    assert dup.value.code == "resource_already_exists"
    old = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "eur",
            "unit_amount": 1900,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
        }
    )
    assert old.id.startswith("price_")
    assert (old.unit_amount, old.recurring.interval, old.type) == (1900, "month", "recurring")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "eur",
                "unit_amount": 2900,
                "recurring": {"interval": "month"},
                "lookup_key": "pro_monthly",
            }
        )
    new = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "eur",
            "unit_amount": 2900,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    client.v1.prices.update(old.id, params={"active": False})
    listed = client.v1.prices.list(
        params={"lookup_keys": ["pro_monthly"], "active": True, "expand": ["data.product"]}
    )
    assert [p.id for p in listed.data] == [new.id]
    assert listed.data[0].product.name == "Pro"
    assert client.v1.prices.retrieve(old.id).lookup_key is None
    assert len(client.v1.prices.list(params={"product": product.id}).data) == 2
    renamed = client.v1.products.update(
        product.id, params={"name": "Pro+", "default_price": new.id}
    )
    assert (renamed.name, renamed.default_price) == ("Pro+", new.id)


def test_lists_paginate(client):
    ids = [client.v1.products.create(params={"name": f"P{i}"}).id for i in range(5)]
    page = client.v1.products.list(params={"limit": 2})
    assert page.has_more and [p.id for p in page.data] == ids[::-1][:2]
    assert [p.id for p in page.auto_paging_iter()] == ids[::-1]


# --- meters ----------------------------------------------------------------------------


def test_meter_events_are_idempotent_by_identifier(client, fake_stripe, catalog):
    customer = client.v1.customers.create(params={})
    meter = catalog["meter"]
    assert [m.id for m in client.v1.billing.meters.list().data] == [meter.id]

    def report(identifier, value):
        return client.v1.billing.meter_events.create(
            params={
                "event_name": "tollgate_tokens",
                "identifier": identifier,
                "payload": {"stripe_customer_id": customer.id, "value": str(value)},
            }
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: report("usage_1", 1500), range(16)))
    event = report("usage_2", 2500)
    assert event.identifier == "usage_2"
    assert fake_stripe.meter_total(customer.id, "tollgate_tokens") == Decimal(4000)
    now = int(time.time())
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer.id, "start_time": now - 60, "end_time": now + 60}
    )
    assert summaries.data[0].aggregated_value == 4000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meter_events.create(
            params={"event_name": "nope", "payload": {"stripe_customer_id": customer.id}}
        )


def test_metered_usage_is_invoiced_at_the_period_end(client, fake_stripe, catalog):
    customer = client.v1.customers.create(params={})
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": catalog["team"].id}, {"price": catalog["overage"].id}],
        }
    )
    assert sub.latest_invoice and sub.status == "active"
    for n, tokens in enumerate([1_500_000, 700_000]):
        client.v1.billing.meter_events.create(
            params={
                "event_name": "tollgate_tokens",
                "identifier": f"ev{n}",
                "payload": {"stripe_customer_id": customer.id, "value": str(tokens)},
            }
        )
    invoice = fake_stripe.advance(sub.id)["invoice"]
    amounts = sorted(line["amount"] for line in invoice["lines"]["data"])
    assert amounts == [900, 5000]  # 2.2M tokens -> 3 units x $3, plus next month's $50
    assert invoice["status"] == "paid" and invoice["billing_reason"] == "subscription_cycle"


# --- subscriptions ----------------------------------------------------------------------


def test_subscription_lifecycle(client, fake_stripe, catalog, receiver):
    sub = subscribe(
        client, catalog["pro"], metadata={"workspace_id": "7"}, expand=["latest_invoice"]
    )
    item = sub["items"].data[0]
    assert sub.id.startswith("sub_") and item.id.startswith("si_")
    assert sub.status == "active" and sub.cancel_at_period_end is False
    assert item.price.id == catalog["pro"].id
    assert 28 * DAY <= item.current_period_end - item.current_period_start <= 31 * DAY
    assert sub.latest_invoice.status == "paid" and sub.latest_invoice.amount_paid == 2000
    invoice = sub.latest_invoice
    assert invoice.parent.subscription_details.subscription == sub.id
    assert client.v1.invoices.list(params={"subscription": sub.id}).data[0].id == invoice.id

    advanced = fake_stripe.advance(sub.id)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert renewed["items"].data[0].current_period_start == item.current_period_end
    assert advanced["invoice"]["amount_paid"] == 2000

    canceling = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert canceling.cancel_at_period_end and canceling.cancel_at
    fake_stripe.advance(sub.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert client.v1.subscriptions.list(params={"customer": sub.customer}).data == []
    assert len(client.v1.subscriptions.list(params={"status": "all"}).data) == 1
    fake_stripe.flush()
    payments = ("payment_intent.", "charge.")  # each paid invoice also has its PI + charge
    assert [t for t in receiver.types() if not t.startswith(payments)] == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    cancel_event = receiver.events[-2]
    assert cancel_event.data.previous_attributes["cancel_at_period_end"] is False


def test_cancel_now_and_search(client, catalog):
    sub = subscribe(client, catalog["pro"], metadata={"workspace_id": "9"})
    found = client.v1.subscriptions.search(params={"query": "metadata['workspace_id']:'9'"})
    assert [s.id for s in found.data] == [sub.id]
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at


def test_failed_renewal_makes_the_subscription_past_due(client, fake_stripe, catalog, receiver):
    sub = subscribe(client, catalog["pro"])
    fake_stripe.set_card_failing(sub.customer)
    invoice = fake_stripe.advance(sub.id)["invoice"]
    assert invoice["status"] == "open" and invoice["attempt_count"] == 1
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    fake_stripe.set_card_failing(sub.customer, False)
    assert client.v1.invoices.pay(invoice["id"]).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    fake_stripe.flush()
    assert "invoice.payment_failed" in receiver.types()


# --- prorations, previews and pending updates ---------------------------------------


def halfway(sub) -> int:
    item = sub["items"].data[0]
    return (item.current_period_start + item.current_period_end) // 2


def test_preview_and_upgrade_charge_the_same_integer_proration(client, catalog):
    sub = subscribe(client, catalog["pro"])
    item = sub["items"].data[0]
    change = {
        "items": [{"id": item.id, "price": catalog["team"].id}],
        "proration_behavior": "always_invoice",
        "proration_date": halfway(sub),
    }
    preview = client.v1.invoices.create_preview(
        params={"customer": sub.customer, "subscription": sub.id, "subscription_details": change}
    )
    lines = preview.lines.data
    assert [ln.amount for ln in lines] == [-1000, 2500]
    assert all(ln.parent.subscription_item_details.proration for ln in lines)
    assert preview.amount_due == 1500
    assert client.v1.invoices.list(params={"customer": sub.customer}).data[0].id != preview.id

    upgraded = client.v1.subscriptions.update(
        sub.id,
        params={
            **change,
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        },
    )
    assert upgraded["items"].data[0].price.id == catalog["team"].id
    assert upgraded.pending_update is None
    assert upgraded.latest_invoice.status == "paid"
    assert upgraded.latest_invoice.amount_paid == 1500
    assert upgraded.latest_invoice.billing_reason == "subscription_update"


def test_next_invoice_preview_includes_pending_prorations(client, catalog):
    sub = subscribe(client, catalog["pro"])
    item = sub["items"].data[0]
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog["team"].id}],
            "proration_behavior": "create_prorations",
            "proration_date": halfway(sub),
        },
    )
    upcoming = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert sorted(ln.amount for ln in upcoming.lines.data) == [-1000, 2500, 5000]
    assert upcoming.amount_due == 6500


def test_pending_update_when_the_upgrade_payment_fails(client, fake_stripe, catalog, receiver):
    sub = subscribe(client, catalog["pro"])
    item = sub["items"].data[0]
    fake_stripe.fail_next_payment()
    held = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog["team"].id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        },
    )
    assert held["items"].data[0].price.id == catalog["pro"].id  # unchanged
    assert held.pending_update.subscription_items[0].price.id == catalog["team"].id
    assert held.latest_invoice.status == "open" and held.status == "active"
    with pytest.raises(stripe.InvalidRequestError):  # only pending-update params allowed
        client.v1.subscriptions.update(
            sub.id,
            params={"cancel_at_period_end": True, "payment_behavior": "pending_if_incomplete"},
        )
    paid = client.v1.invoices.pay(held.latest_invoice.id)
    assert paid.status == "paid"
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert applied["items"].data[0].price.id == catalog["team"].id
    assert applied.pending_update is None
    fake_stripe.flush()
    types = receiver.types()
    failed_at = types.index("invoice.payment_failed")
    assert types[failed_at + 1] == "customer.subscription.updated"  # pending_update set
    assert types[-3:] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",  # the pending update applied
    ]


def test_unpaid_pending_update_lapses_at_the_next_period(client, fake_stripe, catalog):
    sub = subscribe(client, catalog["pro"])
    fake_stripe.fail_next_payment()
    held = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": catalog["team"].id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    invoice = fake_stripe.advance(sub.id)["invoice"]
    assert invoice["amount_due"] == 2000  # renewed at the old price
    after = client.v1.subscriptions.retrieve(sub.id)
    assert after.pending_update is None
    assert client.v1.invoices.retrieve(held.latest_invoice).status == "void"


def test_subscription_item_update_and_list(client, catalog):
    sub = subscribe(client, catalog["pro"])
    item = sub["items"].data[0]
    changed = client.v1.subscription_items.update(
        item.id, params={"price": catalog["team"].id, "proration_behavior": "none"}
    )
    assert changed.price.id == catalog["team"].id
    listed = client.v1.subscription_items.list(params={"subscription": sub.id})
    assert [i.id for i in listed.data] == [item.id]
    assert client.v1.invoices.list(params={"subscription": sub.id}).data[0].billing_reason == (
        "subscription_create"
    )


def test_concurrent_requests_are_serialized(client, catalog):
    sub = subscribe(client, catalog["pro"])

    def tag(n):
        client.v1.subscriptions.update(sub.id, params={"metadata": {f"k{n}": str(n)}})
        return client.v1.customers.create(params={"email": f"c{n}@example.com"}).id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(tag, range(16)))
    assert len(set(ids)) == 16
    metadata = client.v1.subscriptions.retrieve(sub.id).metadata.to_dict()
    assert metadata == {f"k{n}": str(n) for n in range(16)}


def test_error_if_incomplete_declines_without_changes(client, fake_stripe, catalog):
    sub = subscribe(client, catalog["pro"])
    fake_stripe.set_card_failing(sub.customer)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.subscriptions.update(
            sub.id,
            params={
                "items": [{"id": sub["items"].data[0].id, "price": catalog["team"].id}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == catalog["pro"].id


# --- checkout and portal ------------------------------------------------------------


def test_checkout_pay_creates_subscription_and_redirects(client, fake_stripe, catalog, receiver):
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": catalog["pro"].id, "quantity": 1}],
            "success_url": "http://app.test/billing/?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://app.test/billing/",
            "client_reference_id": "ws_7",
            "metadata": {"workspace_id": "7"},
            "subscription_data": {"metadata": {"workspace_id": "7"}},
        },
    )
    assert session.id.startswith("cs_") and session.url.startswith(fake_stripe.url)
    assert session.status == "open" and session.amount_total == 2000
    page = httpx.get(session.url)
    assert "Pay $20.00" in page.text and "Demo payments" in page.text
    declined = httpx.post(session.url, data={"card": "4000 0000 0000 0002"})
    assert declined.status_code == 402 and "declined" in declined.text
    paid = httpx.post(session.url, data={"card": "4242 4242 4242 4242"})
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://app.test/billing/?session_id={session.id}"

    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription", "line_items"]}
    )
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.subscription.status == "active"
    assert done.subscription.metadata["workspace_id"] == "7"
    assert done.line_items.data[0].price.id == catalog["pro"].id
    assert receiver.types()[-1] == "checkout.session.completed"  # delivered before redirect
    completed = receiver.events[-1].data.object
    assert (
        completed.client_reference_id == "ws_7" and completed.subscription == done.subscription.id
    )
    assert {"customer.subscription.created", "invoice.finalized", "invoice.paid"} <= set(
        receiver.types()
    )


def test_checkout_creates_a_customer_when_none_given(client, catalog):
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "new@example.com",
            "line_items": [{"price": catalog["pro"].id, "quantity": 1}],
            "success_url": "http://app.test/ok",
        },
    )
    httpx.post(session.url, data={"card": "4242424242424242"})
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert client.v1.customers.retrieve(done.customer).email == "new@example.com"


def test_portal_cancel_and_back(client, fake_stripe, catalog, receiver):
    sub = subscribe(client, catalog["pro"])
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": sub.customer, "return_url": "http://app.test/billing/"}
    )
    assert portal.id.startswith("bps_") and portal.url.startswith(fake_stripe.url)
    page = httpx.get(portal.url).text
    assert "Cancel plan" in page and "http://app.test/billing/" in page
    action = f"{portal.url}/subscriptions/{sub.id}/cancel"
    assert "will be canceled" in httpx.post(action).text
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    assert receiver.types()[-1] == "customer.subscription.updated"
    httpx.post(f"{portal.url}/subscriptions/{sub.id}/renew")
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False


# --- webhooks, events, idempotency ---------------------------------------------------


def test_webhooks_are_signed_and_can_be_resent(client, fake_stripe, receiver):
    customer = client.v1.customers.create(params={"email": "x@example.com"})
    fake_stripe.flush()
    event = receiver.events[0]
    assert event.type == "customer.created" and event.data.object.id == customer.id
    assert client.v1.events.retrieve(event.id).type == "customer.created"
    listed = client.v1.events.list(params={"type": "customer.created"})
    assert [e.id for e in listed.data] == [event.id]

    fake_stripe.resend(event.id)
    fake_stripe.flush()
    assert [e.id for e in receiver.events] == [event.id, event.id]

    body, header = fake_stripe.signed_payload(fake_stripe.events()[0], FAKE_STRIPE_WEBHOOK_SECRET)
    assert stripe.Webhook.construct_event(body, header, FAKE_STRIPE_WEBHOOK_SECRET).id == event.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            body.replace(b"x@", b"y@"), header, FAKE_STRIPE_WEBHOOK_SECRET
        )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_wrong")


def test_a_wrong_secret_is_rejected_by_the_receiver(client, fake_stripe):
    rec = Receiver(FAKE_STRIPE_WEBHOOK_SECRET)
    fake_stripe.add_webhook_endpoint(rec.url, "whsec_someone_else")
    client.v1.customers.create(params={})
    fake_stripe.flush()
    assert rec.events == [] and rec.rejected == 1
    assert fake_stripe.deliveries[-1]["status"] == 400
    rec.httpd.shutdown()
    rec.httpd.server_close()


def test_control_endpoints_over_http(client, fake_stripe, catalog):
    sub = subscribe(client, catalog["pro"])
    base = f"{fake_stripe.url}/_control"
    advanced = httpx.post(f"{base}/subscriptions/{sub.id}/advance").json()
    assert advanced["invoice"]["billing_reason"] == "subscription_cycle"
    events = httpx.get(f"{base}/events", params={"type": "invoice.paid"}).json()["data"]
    assert len(events) == 2
    httpx.post(f"{base}/payments/fail_next", json={"count": 1})
    assert (
        httpx.post(f"{base}/subscriptions/{sub.id}/advance").json()["invoice"]["status"] == "open"
    )
    httpx.post(f"{base}/reset")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.retrieve(sub.id)


def test_idempotency_keys(client):
    first = client.v1.customers.create(
        params={"email": "i@example.com"}, options={"idempotency_key": "k1"}
    )
    again = client.v1.customers.create(
        params={"email": "i@example.com"}, options={"idempotency_key": "k1"}
    )
    assert first.id == again.id
    assert len(client.v1.customers.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "k1"}
        )


def test_sdk_retries_through_an_injected_fault(fake_stripe):
    retrying = fake_stripe.client(FAKE_STRIPE_SECRET_KEY, max_network_retries=2)
    fake_stripe.inject_fault(status=500, count=1)
    assert retrying.v1.customers.create(params={"email": "r@example.com"}).id
    assert len(retrying.v1.customers.list().data) == 1


# --- running it ----------------------------------------------------------------------


def test_command_line_server_sends_webhooks(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = Receiver("whsec_cli")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "standins.fake_stripe",
            "--port",
            str(port),
            "--webhook-url",
            rec.url,
            "--webhook-secret",
            "whsec_cli",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "demo payments" in proc.stdout.readline()
        client = stripe.StripeClient(
            "sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{port}"}
        )
        client.v1.customers.create(params={"email": "cli@example.com"})
        deadline = time.monotonic() + 10
        while not rec.events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.types() == ["customer.created"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        rec.httpd.shutdown()
        rec.httpd.server_close()


@pytest.mark.browser
def test_checkout_page_in_a_real_browser(client, fake_stripe, catalog, page):
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "b@example.com",
            "line_items": [{"price": catalog["pro"].id, "quantity": 1}],
            "success_url": f"{fake_stripe.url}/healthz?session={{CHECKOUT_SESSION_ID}}",
        },
    )
    page.goto(session.url)
    page.get_by_role("button", name="Pay $20.00").click()
    page.wait_for_url("**/healthz?session=*")
    assert parse_qs(urlsplit(page.url).query)["session"] == [session.id]
    assert json.loads(page.locator("body").inner_text()) == {"ok": True}
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


@pytest.mark.browser
def test_portal_page_in_a_real_browser(client, fake_stripe, catalog, page):
    sub = subscribe(client, catalog["pro"])
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": sub.customer, "return_url": f"{fake_stripe.url}/healthz"}
    )
    page.goto(portal.url)
    page.get_by_role("button", name="Cancel plan").click()
    page.get_by_text("Your plan will be canceled on").wait_for()
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    page.get_by_role("link", name="Back").click()
    page.wait_for_url(f"{fake_stripe.url}/healthz")

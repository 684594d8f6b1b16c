"""The API's routes: (method, path pattern, handler)."""

from __future__ import annotations

import re

from . import catalog, checkout, finance, invoices, metering, preview, subscriptions
from .context import Ctx
from .events import Deliverer
from .forms import check_known, get_list, require
from .search import search


class Rendered(dict):
    """A response body that is already rendered (lists, special expands)."""


def list_events(ctx: Ctx) -> dict:
    objs = ctx.state.find("event")
    if ctx.params.get("type"):
        wanted = ctx.params["type"]
        objs = [
            e
            for e in objs
            if e["type"] == wanted or (wanted.endswith("*") and e["type"].startswith(wanted[:-1]))
        ]
    return ctx.page(objs)


def retrieve_event(ctx: Ctx) -> dict:
    return ctx.state.get("event", ctx.args["id"])


def retrieve_checkout_session(ctx: Ctx) -> dict:
    session = Rendered(ctx.render(checkout.retrieve_checkout_session(ctx)))
    if "line_items" in ctx.expand:
        lines = ctx.state.checkout_lines.get(session["id"], [])
        session["line_items"] = {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session['id']}/line_items",
        }
    return session


def webhook_endpoints(deliverer: Deliverer):
    def create(ctx: Ctx) -> dict:
        from .state import new_id

        check_known(ctx.params, {"url", "enabled_events", "description", "api_version", "metadata"})
        events = [str(e) for e in get_list(ctx.params, "enabled_events")] or ["*"]
        endpoint = deliverer.add_endpoint(
            require(ctx.params, "url"), "whsec_" + new_id("", 32), events
        )
        return Rendered(endpoint.as_json())

    def listing(ctx: Ctx) -> dict:
        data = [e.as_json() for e in deliverer.endpoints]
        return Rendered({"object": "list", "data": data, "has_more": False, "url": ctx.path})

    return create, listing


_ID = r"(?P<id>[A-Za-z0-9_]+)"


def api_routes(deliverer: Deliverer) -> list[tuple[str, re.Pattern, object]]:
    create_endpoint, list_endpoints = webhook_endpoints(deliverer)
    table = [
        ("POST", "/v1/customers", catalog.create_customer),
        ("GET", "/v1/customers", catalog.list_customers),
        ("GET", "/v1/customers/search", search("customer")),
        ("GET", f"/v1/customers/{_ID}", catalog.retrieve_customer),
        ("POST", f"/v1/customers/{_ID}", catalog.update_customer),
        ("DELETE", f"/v1/customers/{_ID}", catalog.delete_customer),
        ("POST", f"/v1/customers/{_ID}/tax_ids", finance.create_tax_id),
        ("GET", f"/v1/customers/{_ID}/tax_ids", finance.list_tax_ids),
        ("DELETE", f"/v1/customers/{_ID}/tax_ids/(?P<tax_id>[A-Za-z0-9_]+)", finance.delete_tax_id),
        ("POST", "/v1/coupons", finance.create_coupon),
        ("GET", f"/v1/coupons/{_ID}", finance.retrieve_coupon),
        ("GET", f"/v1/payment_intents/{_ID}", finance.retrieve_payment_intent),
        ("GET", f"/v1/charges/{_ID}", finance.retrieve_charge),
        ("GET", "/v1/refunds", finance.list_refunds),
        ("GET", f"/v1/refunds/{_ID}", finance.retrieve_refund),
        ("POST", "/v1/credit_notes", finance.create_credit_note),
        ("GET", "/v1/credit_notes", finance.list_credit_notes),
        ("GET", f"/v1/credit_notes/{_ID}", finance.retrieve_credit_note),
        ("GET", f"/v1/credit_notes/{_ID}/lines", finance.credit_note_lines),
        ("POST", f"/v1/credit_notes/{_ID}/void", finance.void_credit_note),
        ("POST", "/v1/products", catalog.create_product),
        ("GET", "/v1/products", catalog.list_products),
        ("GET", "/v1/products/search", search("product")),
        ("GET", f"/v1/products/{_ID}", catalog.retrieve_product),
        ("POST", f"/v1/products/{_ID}", catalog.update_product),
        ("POST", "/v1/prices", catalog.create_price),
        ("GET", "/v1/prices", catalog.list_prices),
        ("GET", "/v1/prices/search", search("price")),
        ("GET", f"/v1/prices/{_ID}", catalog.retrieve_price),
        ("POST", f"/v1/prices/{_ID}", catalog.update_price),
        ("POST", "/v1/billing/meters", metering.create_meter),
        ("GET", "/v1/billing/meters", metering.list_meters),
        ("GET", f"/v1/billing/meters/{_ID}", metering.retrieve_meter),
        ("GET", f"/v1/billing/meters/{_ID}/event_summaries", metering.event_summaries),
        ("POST", "/v1/billing/meter_events", metering.create_meter_event),
        ("POST", "/v1/checkout/sessions", checkout.create_checkout_session),
        ("GET", "/v1/checkout/sessions", checkout.list_checkout_sessions),
        ("GET", f"/v1/checkout/sessions/{_ID}", retrieve_checkout_session),
        ("GET", f"/v1/checkout/sessions/{_ID}/line_items", checkout.checkout_line_items),
        ("POST", f"/v1/checkout/sessions/{_ID}/expire", checkout.expire_checkout_session),
        ("POST", "/v1/billing_portal/sessions", checkout.create_portal_session),
        ("POST", "/v1/subscriptions", subscriptions.create_subscription),
        ("GET", "/v1/subscriptions", subscriptions.list_subscriptions),
        ("GET", "/v1/subscriptions/search", search("subscription")),
        ("GET", f"/v1/subscriptions/{_ID}", subscriptions.retrieve_subscription),
        ("POST", f"/v1/subscriptions/{_ID}", subscriptions.update_subscription),
        ("DELETE", f"/v1/subscriptions/{_ID}", subscriptions.cancel_subscription),
        ("GET", "/v1/subscription_items", subscriptions.list_subscription_items),
        ("GET", f"/v1/subscription_items/{_ID}", subscriptions.retrieve_subscription_item),
        ("POST", f"/v1/subscription_items/{_ID}", subscriptions.update_subscription_item),
        ("POST", "/v1/invoices/create_preview", preview.create_preview),
        ("GET", "/v1/invoices", invoices.list_invoices),
        ("GET", f"/v1/invoices/{_ID}", invoices.retrieve_invoice),
        ("GET", f"/v1/invoices/{_ID}/lines", invoices.invoice_lines),
        ("POST", f"/v1/invoices/{_ID}/pay", subscriptions.pay_invoice),
        ("POST", f"/v1/invoices/{_ID}/void", finance.void_invoice),
        ("POST", f"/v1/invoices/{_ID}/mark_uncollectible", finance.mark_uncollectible),
        ("GET", "/v1/events", list_events),
        ("GET", f"/v1/events/{_ID}", retrieve_event),
        ("POST", "/v1/webhook_endpoints", create_endpoint),
        ("GET", "/v1/webhook_endpoints", list_endpoints),
    ]
    return [(method, re.compile(f"^{path}$"), handler) for method, path, handler in table]

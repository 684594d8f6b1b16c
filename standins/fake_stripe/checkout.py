"""Checkout Sessions and Billing Portal sessions, and what their hosted pages do."""

from __future__ import annotations

import copy

from .catalog import price_amount
from .context import Ctx
from .errors import invalid
from .events import emit
from .forms import check_known, get_bool, get_int, get_list, merge_metadata, require
from .invoices import attempt_payment, payment_fails
from .state import State, new_id
from .subscriptions import (
    _set_cancel_at_period_end,
    after_invoice_paid,
    recurring_price,
    start_subscription,
)

CHECKOUT_FIELDS = {
    "mode",
    "line_items",
    "customer",
    "customer_email",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata",
    "subscription_data",
    "allow_promotion_codes",
    "billing_address_collection",
    "payment_method_types",
    "customer_update",
    "locale",
    "expires_at",
    "consent_collection",
    "automatic_tax",
    "tax_id_collection",
    "ui_mode",
    "saved_payment_method_options",
    "payment_method_collection",
    "currency",
}
# Card numbers the hosted page declines, as Stripe's test cards do.
DECLINED_CARDS = {
    "4000000000000002",
    "4000000000009995",
    "4000000000000341",
    "4000000000000069",
    "4000000000000127",
}


def create_checkout_session(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, CHECKOUT_FIELDS)
    if require(p, "mode") != "subscription":
        raise invalid("This fake Stripe supports mode=subscription only.", param="mode")
    customer = p.get("customer")
    if customer:
        ctx.state.get("customer", customer, "customer")
    lines = _checkout_lines(ctx.state, get_list(p, "line_items"))
    session_id = new_id("cs_test_", 58)
    total = sum(li["amount_total"] for li in lines)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": get_bool(p, "allow_promotion_codes"),
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": p.get("billing_address_collection") or None,
        "cancel_url": p.get("cancel_url") or None,
        "client_reference_id": p.get("client_reference_id") or None,
        "created": ctx.state.now(),
        "currency": lines[0]["currency"],
        "customer": customer or None,
        "customer_creation": None if customer else "always",
        "customer_details": None,
        "customer_email": p.get("customer_email") or None,
        "expires_at": get_int(p, "expires_at") or ctx.state.now() + 86400,
        "invoice": None,
        "livemode": False,
        "locale": p.get("locale") or None,
        "metadata": merge_metadata({}, p.get("metadata")),
        "mode": "subscription",
        "payment_intent": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "subscription": None,
        "success_url": require(p, "success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"{ctx.base_url}/c/pay/{session_id}",
        "_subscription_data": p.get("subscription_data") or {},
    }
    ctx.state.checkout_lines[session_id] = lines
    return ctx.state.add("checkout.session", session)


def _checkout_lines(state: State, specs: list) -> list[dict]:
    if not specs:
        raise invalid(
            "Missing required param: line_items.", param="line_items", code="parameter_missing"
        )
    lines = []
    for n, spec in enumerate(specs):
        price = recurring_price(state, require(spec, "price"), f"line_items[{n}][price]")
        metered = price["recurring"]["usage_type"] == "metered"
        quantity = None if metered else get_int(spec, "quantity", 1)
        amount = 0 if metered else price_amount(price, quantity)
        product = state.objects.get("product", {}).get(price["product"], {})
        lines.append(
            {
                "id": new_id("li_", 24),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": product.get("name", price["id"]),
                "price": copy.deepcopy(price),
                "quantity": quantity,
            }
        )
    return lines


def public_session(session: dict) -> dict:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def retrieve_checkout_session(ctx: Ctx) -> dict:
    return ctx.state.get("checkout.session", ctx.args["id"])


def checkout_line_items(ctx: Ctx) -> dict:
    session = retrieve_checkout_session(ctx)
    return ctx.page(list(ctx.state.checkout_lines.get(session["id"], [])))


def list_checkout_sessions(ctx: Ctx) -> dict:
    objs = ctx.state.find("checkout.session")
    for key in ("customer", "subscription", "status"):
        if ctx.params.get(key):
            objs = [s for s in objs if s[key] == ctx.params[key]]
    return ctx.page(objs)


def expire_checkout_session(ctx: Ctx) -> dict:
    session = retrieve_checkout_session(ctx)
    if session["status"] != "open":
        raise invalid(f"Only open sessions can be expired; this one is {session['status']}.")
    session["status"] = "expired"
    emit(ctx.state, "checkout.session.expired", public_session(session))
    return session


def complete_checkout(state: State, session: dict, base_url: str, card: str, email: str) -> str:
    """The hosted page's Pay button: returns "" on success or the decline message."""
    if session["status"] != "open":
        return ""
    customer_id = session["customer"] or _checkout_customer(state, session, email)
    card = card.replace(" ", "")
    if card in DECLINED_CARDS or payment_fails(state, customer_id):
        return "Your card was declined. Try another card."
    customer = state.get("customer", customer_id)
    customer["invoice_settings"]["default_payment_method"] = "pm_card_visa"
    data = session["_subscription_data"]
    specs = [
        {"price": li["price"]["id"], "quantity": li["quantity"]}
        for li in state.checkout_lines[session["id"]]
    ]
    sub = start_subscription(
        state,
        base_url,
        customer_id=customer_id,
        specs=specs,
        metadata=data.get("metadata"),
        description=data.get("description"),
        fails=False,
    )
    session.update(
        status="complete",
        payment_status="paid",
        customer=customer_id,
        subscription=sub["id"],
        invoice=sub["latest_invoice"],
        customer_details={
            "email": customer["email"] or email or None,
            "name": customer["name"],
            "address": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    emit(state, "checkout.session.completed", public_session(session))
    return ""


def _checkout_customer(state: State, session: dict, email: str) -> str:
    from .catalog import create_customer

    ctx = Ctx(state, {"email": session["customer_email"] or email}, "")
    return create_customer(ctx)["id"]


# --- billing portal -----------------------------------------------------------------


def create_portal_session(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(
        p, {"customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of"}
    )
    customer = ctx.state.get("customer", require(p, "customer"), "customer")
    session_id = new_id("bps_", 24)
    session = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": p.get("configuration") or "bpc_fake_default",
        "created": ctx.state.now(),
        "customer": customer["id"],
        "flow": None,
        "livemode": False,
        "locale": p.get("locale") or None,
        "on_behalf_of": None,
        "return_url": p.get("return_url") or None,
        "url": f"{ctx.base_url}/p/session/{session_id}",
    }
    return ctx.state.add("billing_portal.session", session)


def portal_subscription(state: State, session: dict, sub_id: str) -> dict:
    sub = state.get("subscription", sub_id)
    if sub["customer"] != session["customer"]:
        raise invalid("That subscription belongs to another customer.")
    return sub


def portal_set_cancel(state: State, session: dict, sub_id: str, cancel: bool) -> None:
    sub = portal_subscription(state, session, sub_id)
    before = state.render(sub)
    _set_cancel_at_period_end(state, sub, cancel)
    if cancel:
        sub["cancellation_details"]["feedback"] = None
    emit(state, "customer.subscription.updated", sub, before)


def portal_update_card(state: State, session: dict, card: str) -> str:
    """Save a new card and retry open invoices with it; returns an error message or ""."""
    card = card.replace(" ", "")
    customer = state.get("customer", session["customer"])
    before = state.render(customer)
    failing = card in DECLINED_CARDS
    if failing:
        return "Your card was declined. Try another card."
    state.failing_customers.discard(customer["id"])
    customer["invoice_settings"]["default_payment_method"] = "pm_card_visa"
    emit(state, "customer.updated", customer, before)
    for invoice in state.find("invoice")[::-1]:
        is_open = invoice["customer"] == customer["id"] and invoice["status"] == "open"
        if is_open and attempt_payment(state, invoice, fails=False):
            after_invoice_paid(state, invoice)
    return ""

"""Invoices: built from subscription lines, finalized, paid (or declined)."""

from __future__ import annotations

from .catalog import price_amount
from .context import Ctx
from .events import emit
from .metering import meter_total
from .periods import day_label, prorate
from .state import State, new_id

# --- lines --------------------------------------------------------------------------


def line(
    *,
    price: dict,
    quantity: int,
    amount: int,
    description: str,
    period: tuple[int, int],
    subscription: str | None,
    item: str | None,
    proration: bool = False,
    invoice_item: str | None = None,
) -> dict:
    return {
        "id": new_id("il_", 24),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": item,
            },
        },
        "period": {"start": period[0], "end": period[1]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": quantity,
        "taxes": [],
    }


def product_name(state: State, price: dict) -> str:
    product = state.objects.get("product", {}).get(price["product"])
    return product["name"] if product else price["id"]


def period_line(state: State, item: dict, sub_id: str | None, period: tuple[int, int]) -> dict:
    """A licensed item's charge for a whole period (`1 \u00d7 Pro (at $20.00 / month)`)."""
    price, quantity = item["price"], item.get("quantity") or 1
    return line(
        price=price,
        quantity=quantity,
        amount=price_amount(price, quantity),
        description=f"{quantity} \u00d7 {product_name(state, price)}",
        period=period,
        subscription=sub_id,
        item=item["id"],
    )


def usage_line(
    state: State, item: dict, sub: dict, period: tuple[int, int], *, consume: bool
) -> dict | None:
    """A metered item's charge for the usage reported since the last invoice."""
    from .metering import take_uninvoiced_usage

    price = item["price"]
    meter_id = price["recurring"]["meter"]
    if consume:
        usage = take_uninvoiced_usage(state, meter_id=meter_id, customer_id=sub["customer"])
    else:
        total = meter_total(
            state, meter_id=meter_id, customer_id=sub["customer"], uninvoiced_only=True
        )
        usage = int(total.to_integral_value(rounding="ROUND_CEILING"))
    return line(
        price=price,
        quantity=usage,
        amount=price_amount(price, usage),
        description=f"{product_name(state, price)} (usage: {usage})",
        period=period,
        subscription=sub["id"],
        item=item["id"],
    )


def proration_lines(
    state: State, sub_id: str, old: list[dict], new: list[dict], *, at: int
) -> list[dict]:
    """Credit for unused time on changed licensed items, charge for the time left on
    their replacements (each line rounded half up, integer minor units)."""
    old_by_id = {i["id"]: i for i in old}
    new_by_id = {i["id"]: i for i in new}
    lines: list[dict] = []
    for item_id in dict.fromkeys([*old_by_id, *new_by_id]):
        before, after = old_by_id.get(item_id), new_by_id.get(item_id)
        if before and after and _same_charge(before, after):
            continue
        if before and _licensed(before):
            lines.append(_proration(state, sub_id, before, at, credit=True))
        if after and _licensed(after):
            lines.append(_proration(state, sub_id, after, at, credit=False))
    return lines


def _same_charge(a: dict, b: dict) -> bool:
    return a["price"]["id"] == b["price"]["id"] and a.get("quantity") == b.get("quantity")


def _licensed(item: dict) -> bool:
    return item["price"]["recurring"]["usage_type"] == "licensed"


def _proration(state: State, sub_id: str, item: dict, at: int, *, credit: bool) -> dict:
    price, quantity = item["price"], item.get("quantity") or 1
    start, end = item["current_period_start"], item["current_period_end"]
    share = prorate(price_amount(price, quantity), start=start, end=end, at=at)
    what = "Unused time on" if credit else "Remaining time on"
    return line(
        price=price,
        quantity=quantity,
        amount=-share if credit else share,
        description=f"{what} {quantity} \u00d7 {product_name(state, price)} after {day_label(at)}",
        period=(at, end),
        subscription=sub_id,
        item=item["id"],
        proration=True,
    )


# --- invoices -----------------------------------------------------------------------


def build_invoice(
    state: State,
    *,
    customer_id: str,
    lines: list[dict],
    reason: str,
    subscription: dict | None,
    period: tuple[int, int],
    preview: bool = False,
) -> dict:
    from .finance import apply_discounts_and_taxes, customer_snapshot, invoice_totals

    customer = state.get("customer", customer_id)
    invoice_id = new_id("upcoming_in_" if preview else "in_", 24)
    currency = lines[0]["currency"] if lines else "usd"
    for ln in lines:
        ln["invoice"] = invoice_id
    discount_ids = list((subscription or {}).get("discounts") or [])
    apply_discounts_and_taxes(state, customer, lines, discount_ids)
    totals = invoice_totals(lines)
    total = totals["total"]
    invoice = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": state.account["country"],
        "account_name": state.account["name"],
        "account_tax_ids": None,
        "amount_due": max(total, 0),
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": max(total, 0),
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": not preview,
        "automatically_finalizes_at": None,
        "billing_reason": reason,
        "collection_method": "charge_automatically",
        "created": state.now(),
        "currency": currency,
        "customer": customer_id,
        **customer_snapshot(state, customer),
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": discount_ids,
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "parent": _invoice_parent(subscription),
        "payments": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/invoice_payments?invoice={invoice_id}",
        },
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "period_end": period[1],
        "period_start": period[0],
        "starting_balance": 0,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        **totals,
        "total_pretax_credit_amounts": [],
        "webhooks_delivered_at": None,
    }
    if not preview:
        if subscription is not None and discount_ids:
            from .finance import discounts_used

            subscription["discounts"] = discounts_used(state, discount_ids, invoice_id)
        state.add("invoice", invoice)
        emit(state, "invoice.created", invoice)
    return invoice


def _invoice_parent(subscription: dict | None) -> dict | None:
    if subscription is None:
        return None
    return {
        "type": "subscription_details",
        "quote_details": None,
        "subscription_details": {
            "metadata": dict(subscription["metadata"]),
            "subscription": subscription["id"],
        },
    }


def invoice_subscription_id(invoice: dict) -> str | None:
    parent = invoice.get("parent") or {}
    return (parent.get("subscription_details") or {}).get("subscription")


def finalize(state: State, invoice: dict, base_url: str) -> None:
    from .finance import customer_snapshot

    now = state.now()
    count = sum(1 for i in state.find("invoice") if i["customer"] == invoice["customer"])
    customer = state.get("customer", invoice["customer"])
    _apply_customer_balance(invoice, customer)
    invoice.update(customer_snapshot(state, customer))
    invoice.update(
        status="open",
        number=f"{customer['invoice_prefix']}-{count:04d}",
        effective_at=now,
        hosted_invoice_url=f"{base_url}/i/{invoice['id']}",
        invoice_pdf=f"{base_url}/i/{invoice['id']}/pdf",
    )
    invoice["status_transitions"]["finalized_at"] = now
    emit(state, "invoice.finalized", invoice)


def _apply_customer_balance(invoice: dict, customer: dict) -> None:
    """A credit balance (negative, e.g. from a credit note) pays part of the invoice."""
    balance = customer.get("balance") or 0
    applied = max(balance, -invoice["total"]) if invoice["total"] > 0 and balance < 0 else 0
    invoice["starting_balance"] = balance
    invoice["ending_balance"] = balance - applied
    customer["balance"] = balance - applied
    invoice["amount_due"] = max(invoice["total"] + applied, 0)
    invoice["amount_remaining"] = invoice["amount_due"]


def payment_fails(state: State, customer_id: str) -> bool:
    """The test card decides: a failing customer card, or a queued one-off failure."""
    if customer_id in state.failing_customers:
        return True
    if state.fail_next_payments > 0:
        state.fail_next_payments -= 1
        return True
    return False


def attempt_payment(state: State, invoice: dict, *, fails: bool | None = None) -> bool:
    """Charge the customer's card for an open invoice; emits paid or payment_failed."""
    if invoice["amount_due"] > 0:
        if fails is None:
            fails = payment_fails(state, invoice["customer"])
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
    else:
        fails = False
    if fails:
        invoice["next_payment_attempt"] = state.now() + 3 * 86400
        emit(state, "invoice.payment_failed", invoice)
        return False
    from .finance import record_payment

    record_payment(state, invoice)
    now = state.now()
    invoice.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        next_payment_attempt=None,
    )
    invoice["status_transitions"]["paid_at"] = now
    emit(state, "invoice.paid", invoice)
    emit(state, "invoice.payment_succeeded", invoice)
    return True


def collect(state: State, invoice: dict, base_url: str, *, fails: bool | None = None) -> bool:
    finalize(state, invoice, base_url)
    return attempt_payment(state, invoice, fails=fails)


# --- endpoints ----------------------------------------------------------------------


def retrieve_invoice(ctx: Ctx) -> dict:
    return ctx.state.get("invoice", ctx.args["id"])


def list_invoices(ctx: Ctx) -> dict:
    p = ctx.params
    objs = ctx.state.find("invoice")
    if p.get("customer"):
        objs = [i for i in objs if i["customer"] == p["customer"]]
    if p.get("subscription"):
        objs = [i for i in objs if invoice_subscription_id(i) == p["subscription"]]
    if p.get("status"):
        objs = [i for i in objs if i["status"] == p["status"]]
    return ctx.page(objs)


def invoice_lines(ctx: Ctx) -> dict:
    invoice = retrieve_invoice(ctx)
    return ctx.page(list(invoice["lines"]["data"]))

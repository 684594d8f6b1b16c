"""What finance needs from the fake: the account's public details, customer tax ids,
tax on invoice lines, coupons/discounts, payments (PaymentIntent + Charge + the
invoice's `payments`), refunds, credit notes, void and mark-uncollectible.

Shapes follow Stripe's API (2026 versions): `invoice.total_taxes[]` / line
`taxes[]` with `tax_rate_details`, `invoice.payments` (InvoicePayment with a
`payment_intent`), credit notes with `pre_payment_amount` / `post_payment_amount`
and `refunds[]`. Tax is a simplification of Stripe Tax: a rate per customer
country (`FakeStripe.set_tax_rate`), reverse charge (0, `reverse_charge`) for a
business customer with an `eu_vat` id outside the account's country. Everything
kept in `State` is plain JSON (ints, strings, dicts, lists)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .context import Ctx
from .errors import StripeFakeError, invalid
from .events import emit
from .forms import check_known, get_int, get_list, merge_metadata, require
from .state import DEFAULT_ACCOUNT, State, new_id

TAX_ID_TYPES = {
    "eu_vat",
    "gb_vat",
    "ch_vat",
    "no_vat",
    "us_ein",
    "au_abn",
    "ca_bn",
    "in_gst",
    "jp_cn",
}
EU = {
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
}  # fmt: skip


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- account ---------------------------------------------------------------------------


def configure_account(state: State, **details) -> dict:
    """The account's public business details, printed on every invoice PDF."""
    account = state.account
    for key in ("name", "country", "email"):
        if details.get(key) is not None:
            account[key] = details[key]
    if details.get("address") is not None:
        account["address"] = {**DEFAULT_ACCOUNT["address"], **details["address"]}
    if details.get("tax_id") is not None:
        account["tax_id"] = details["tax_id"] or None
    return account


def operator_account(
    *, name: str, address_lines: list[str], country: str, tax_id: str, email: str
) -> dict:
    """configure_account() arguments from the operator's settings (Tollgate's
    TOLLGATE_OPERATOR_*): address lines go to line1 / line2 as written."""
    lines = [x.strip() for x in address_lines if x.strip()]
    return {
        "name": name,
        "country": country,
        "email": email or None,
        "address": {
            "line1": lines[0] if lines else None,
            "line2": ", ".join(lines[1:]) or None,
            "country": country,
        },
        "tax_id": {"type": "eu_vat" if country in EU else "tax_id", "value": tax_id}
        if tax_id
        else {},
    }


# --- customer tax ids --------------------------------------------------------------------


def create_tax_id(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, {"type", "value", "metadata"})
    customer = ctx.state.get("customer", ctx.args["id"])
    kind = require(p, "type")
    if kind not in TAX_ID_TYPES:
        raise invalid(f"Invalid value for type: {kind}", param="type")
    value = str(require(p, "value")).replace(" ", "").upper()
    if kind == "eu_vat" and (len(value) < 4 or value[:2] not in EU | {"EL", "XI"}):
        raise StripeFakeError(
            400, "Invalid value for eu_vat.", code="tax_id_invalid", param="value"
        )
    tax_id = {
        "id": new_id("txi_", 24),
        "object": "tax_id",
        "country": value[:2] if kind == "eu_vat" else None,
        "created": ctx.state.now(),
        "customer": customer["id"],
        "livemode": False,
        "type": kind,
        "value": value,
        "verification": {"status": "pending", "verified_address": None, "verified_name": None},
    }
    ctx.state.add("tax_id", tax_id)
    emit(ctx.state, "customer.tax_id.created", tax_id)
    return tax_id


def _customer_tax_ids(state: State, customer_id: str) -> list[dict]:
    return [t for t in state.find("tax_id") if t["customer"] == customer_id][::-1]


def list_tax_ids(ctx: Ctx) -> dict:
    ctx.state.get("customer", ctx.args["id"])
    return ctx.page(_customer_tax_ids(ctx.state, ctx.args["id"])[::-1])


def delete_tax_id(ctx: Ctx) -> dict:
    tax_id = ctx.state.get("tax_id", ctx.args["tax_id"])
    if tax_id["customer"] != ctx.args["id"]:
        raise StripeFakeError(404, f"No such tax id: '{tax_id['id']}'", code="resource_missing")
    del ctx.state.objects["tax_id"][tax_id["id"]]
    emit(ctx.state, "customer.tax_id.deleted", tax_id)
    return {"id": tax_id["id"], "object": "tax_id", "deleted": True}


def customer_snapshot(state: State, customer: dict) -> dict:
    """What an invoice copies from its customer when it is finalized."""
    return {
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [
            {"type": t["type"], "value": t["value"]}
            for t in _customer_tax_ids(state, customer["id"])
        ],
    }


# --- tax -------------------------------------------------------------------------------


def set_tax_rate(state: State, country: str, percentage: str | None) -> None:
    if percentage is None:
        state.tax_rates.pop(country.upper(), None)
    else:
        state.tax_rates[country.upper()] = str(Decimal(str(percentage)))


def _tax_rate_object(state: State, country: str, percentage: str) -> dict:
    for rate in state.find("tax_rate"):
        if rate["country"] == country and rate["percentage"] == float(percentage):
            return rate
    rate = {
        "id": new_id("txr_", 24),
        "object": "tax_rate",
        "active": True,
        "country": country,
        "created": state.now(),
        "description": None,
        "display_name": "VAT",
        "effective_percentage": float(percentage),
        "inclusive": False,
        "jurisdiction": country,
        "livemode": False,
        "metadata": {},
        "percentage": float(percentage),
        "rate_type": "percentage",
        "state": None,
        "tax_type": "vat",
    }
    return state.add("tax_rate", rate)


def _tax_treatment(state: State, customer: dict) -> tuple[str | None, str]:
    """(percentage or None, taxability_reason) for this customer."""
    country = ((customer.get("address") or {}).get("country") or "").upper()
    percentage = state.tax_rates.get(country)
    if not country or percentage is None or customer.get("tax_exempt") == "exempt":
        return None, "not_collecting"
    has_vat_id = any(t["type"] == "eu_vat" for t in _customer_tax_ids(state, customer["id"]))
    if has_vat_id and country in EU and country != state.account["country"]:
        return "0", "reverse_charge"
    return percentage, "standard_rated"


def apply_discounts_and_taxes(state: State, customer: dict, lines: list[dict], discounts) -> None:
    """Fill each line's `discount_amounts` and `taxes` (exclusive tax on the
    discounted amount, rounded half up per line)."""
    _apply_discounts(state, lines, discounts)
    percentage, reason = _tax_treatment(state, customer)
    for ln in lines:
        ln["taxes"] = []
        if percentage is None:
            continue
        taxable = ln["amount"] - sum(d["amount"] for d in ln["discount_amounts"])
        rate = _tax_rate_object(state, customer["address"]["country"].upper(), percentage)
        ln["taxes"].append(
            {
                "amount": half_up(Decimal(taxable) * Decimal(percentage) / 100),
                "tax_behavior": "exclusive",
                "tax_rate_details": {"tax_rate": rate["id"]},
                "taxability_reason": reason,
                "taxable_amount": taxable,
                "type": "tax_rate_details",
            }
        )


def invoice_totals(lines: list[dict]) -> dict:
    subtotal = sum(ln["amount"] for ln in lines)
    discounts: dict[str, int] = {}
    for ln in lines:
        for d in ln["discount_amounts"]:
            discounts[d["discount"]] = discounts.get(d["discount"], 0) + d["amount"]
    taxes: dict[tuple, dict] = {}
    for ln in lines:
        for t in ln["taxes"]:
            key = (t["tax_rate_details"]["tax_rate"], t["taxability_reason"])
            agg = taxes.setdefault(key, {**t, "amount": 0, "taxable_amount": 0})
            agg["amount"] += t["amount"]
            agg["taxable_amount"] += t["taxable_amount"]
    discount = sum(discounts.values())
    tax = sum(t["amount"] for t in taxes.values())
    return {
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "total_discount_amounts": [{"amount": a, "discount": d} for d, a in discounts.items()],
        "total_excluding_tax": subtotal - discount,
        "total_taxes": list(taxes.values()),
        "total": subtotal - discount + tax,
    }


# --- coupons and discounts ------------------------------------------------------------------


def create_coupon(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, {"id", "percent_off", "amount_off", "currency", "duration", "name", "metadata"})
    if not p.get("percent_off") and not p.get("amount_off"):
        raise invalid("Coupons must have either a percent_off or an amount_off.")
    coupon = {
        "id": p.get("id") or new_id("", 8),
        "object": "coupon",
        "amount_off": get_int(p, "amount_off"),
        "created": ctx.state.now(),
        "currency": p.get("currency") or None,
        "duration": p.get("duration") or "once",
        "livemode": False,
        "metadata": merge_metadata({}, p.get("metadata")),
        "name": p.get("name") or None,
        "percent_off": float(p["percent_off"]) if p.get("percent_off") else None,
        "valid": True,
    }
    if coupon["duration"] not in ("once", "forever", "repeating"):
        raise invalid("Invalid duration", param="duration")
    if coupon["id"] in ctx.state.objects.get("coupon", {}):
        raise invalid("Coupon already exists.", code="resource_already_exists", param="id")
    return ctx.state.add("coupon", coupon)


def retrieve_coupon(ctx: Ctx) -> dict:
    return ctx.state.get("coupon", ctx.args["id"])


def attach_discounts(state: State, sub: dict, specs) -> None:
    """`discounts[0][coupon]=…` on a subscription create/update."""
    if specs is None:
        return
    sub["discounts"] = []
    for spec in get_list({"d": specs}, "d"):
        coupon = state.get("coupon", spec.get("coupon") if isinstance(spec, dict) else spec)
        discount = {
            "id": new_id("di_", 24),
            "object": "discount",
            "checkout_session": None,
            "coupon": dict(coupon),
            "customer": sub["customer"],
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "source": {"type": "coupon", "coupon": coupon["id"]},
            "start": state.now(),
            "subscription": sub["id"],
            "subscription_item": None,
        }
        state.add("discount", discount)
        sub["discounts"].append(discount["id"])


def _apply_discounts(state: State, lines: list[dict], discount_ids: list[str]) -> None:
    for ln in lines:
        ln["discount_amounts"] = []
        ln["discounts"] = []
    for discount_id in discount_ids or []:
        discount = state.objects.get("discount", {}).get(discount_id)
        if discount is None:
            continue
        coupon = discount["coupon"]
        eligible = [ln for ln in lines if ln.get("discountable", True) and ln["amount"] > 0]
        base = sum(ln["amount"] for ln in eligible)
        if coupon["percent_off"]:
            shares = [
                half_up(Decimal(ln["amount"]) * Decimal(str(coupon["percent_off"])) / 100)
                for ln in eligible
            ]
        else:
            off = min(coupon["amount_off"] or 0, base)
            shares = [off * ln["amount"] // base if base else 0 for ln in eligible]
            if shares:
                shares[-1] += off - sum(shares)
        for ln, share in zip(eligible, shares, strict=True):
            if share:
                ln["discount_amounts"].append({"amount": share, "discount": discount_id})
                ln["discounts"].append(discount_id)


def discounts_used(state: State, discount_ids: list[str], invoice_id: str) -> list[str]:
    """After an invoice: `once` coupons are spent, the rest stay."""
    kept = []
    for discount_id in discount_ids:
        discount = state.objects.get("discount", {}).get(discount_id)
        if discount is None:
            continue
        if discount["coupon"]["duration"] == "once":
            discount["invoice"] = invoice_id
            discount["end"] = state.now()
        else:
            kept.append(discount_id)
    return kept


# --- payments --------------------------------------------------------------------------------

CARD_BRANDS = {
    "pm_card_visa": ("visa", "4242"),
    "pm_card_mastercard": ("mastercard", "4444"),
    "pm_card_amex": ("amex", "8431"),
}


def _card(customer: dict) -> tuple[str, str]:
    pm = (customer.get("invoice_settings") or {}).get("default_payment_method") or "pm_card_visa"
    return CARD_BRANDS.get(pm, ("visa", "4242"))


def record_payment(state: State, invoice: dict) -> None:
    """A successful charge for an invoice: PaymentIntent + Charge + InvoicePayment."""
    amount = invoice["amount_due"]
    if amount <= 0:
        return
    customer = state.get("customer", invoice["customer"])
    brand, last4 = _card(customer)
    now = state.now()
    pi_id, ch_id = new_id("pi_", 24), new_id("ch_", 24)
    pm_id = new_id("pm_", 24)
    charge = {
        "id": ch_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "captured": True,
        "created": now,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "description": f"Payment for Invoice {invoice['number']}",
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": pi_id,
        "payment_method": pm_id,
        "payment_method_details": {
            "type": "card",
            "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034},
        },
        "receipt_url": None,
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/refunds?charge={ch_id}",
        },
        "status": "succeeded",
    }
    intent = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "created": now,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "latest_charge": ch_id,
        "livemode": False,
        "metadata": {},
        "payment_method": pm_id,
        "payment_method_types": ["card"],
        "status": "succeeded",
    }
    state.add("charge", charge)
    state.add("payment_intent", intent)
    invoice["payments"]["data"].append(
        {
            "id": new_id("inpay_", 24),
            "object": "invoice_payment",
            "amount_paid": amount,
            "amount_requested": amount,
            "created": now,
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": pi_id},
            "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": now},
        }
    )
    invoice["payments"]["total_count"] = len(invoice["payments"]["data"])
    emit(state, "payment_intent.succeeded", intent)
    emit(state, "charge.succeeded", charge)


def invoice_charge(state: State, invoice: dict) -> dict | None:
    for payment in invoice["payments"]["data"][::-1]:
        intent = state.objects.get("payment_intent", {}).get(
            payment["payment"].get("payment_intent") or ""
        )
        if intent and payment["status"] == "paid":
            return state.get("charge", intent["latest_charge"])
    return None


def refund(state: State, charge: dict, amount: int, reason: str | None = None) -> dict:
    if amount > charge["amount"] - charge["amount_refunded"]:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge "
            f"({charge['amount'] - charge['amount_refunded']})",
            param="amount",
        )
    refund_obj = {
        "id": new_id("re_", 24),
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "created": state.now(),
        "currency": charge["currency"],
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "succeeded",
    }
    state.add("refund", refund_obj)
    before = state.render(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    charge["refunds"]["data"].insert(0, refund_obj["id"])
    emit(state, "refund.created", refund_obj)
    emit(state, "charge.refunded", charge, before)
    return refund_obj


def retrieve_payment_intent(ctx: Ctx) -> dict:
    return ctx.state.get("payment_intent", ctx.args["id"])


def retrieve_charge(ctx: Ctx) -> dict:
    return ctx.state.get("charge", ctx.args["id"])


def retrieve_refund(ctx: Ctx) -> dict:
    return ctx.state.get("refund", ctx.args["id"])


def list_refunds(ctx: Ctx) -> dict:
    objs = ctx.state.find("refund")
    if ctx.params.get("charge"):
        objs = [r for r in objs if r["charge"] == ctx.params["charge"]]
    return ctx.page(objs)


# --- void / uncollectible ----------------------------------------------------------------------


def void_invoice(ctx: Ctx) -> dict:
    invoice = ctx.state.get("invoice", ctx.args["id"])
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid(
            f"You can only void an open or uncollectible invoice; this one is {invoice['status']}."
        )
    before = ctx.state.render(invoice)
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = ctx.state.now()
    invoice["next_payment_attempt"] = None
    emit(ctx.state, "invoice.voided", invoice)
    emit(ctx.state, "invoice.updated", invoice, before)
    return invoice


def mark_uncollectible(ctx: Ctx) -> dict:
    invoice = ctx.state.get("invoice", ctx.args["id"])
    if invoice["status"] != "open":
        raise invalid(f"This invoice is {invoice['status']}; only open invoices can be marked.")
    before = ctx.state.render(invoice)
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = ctx.state.now()
    emit(ctx.state, "invoice.marked_uncollectible", invoice)
    emit(ctx.state, "invoice.updated", invoice, before)
    return invoice


# --- credit notes --------------------------------------------------------------------------------

CREDIT_NOTE_FIELDS = {
    "invoice",
    "amount",
    "lines",
    "reason",
    "memo",
    "metadata",
    "refund_amount",
    "credit_amount",
    "out_of_band_amount",
    "email_type",
    "effective_at",
}
REASONS = {"duplicate", "fraudulent", "order_change", "product_unsatisfactory"}


def create_credit_note(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, CREDIT_NOTE_FIELDS)
    state = ctx.state
    invoice = state.get("invoice", require(p, "invoice"), "invoice")
    if invoice["status"] not in ("open", "paid"):
        raise invalid("Credit notes can only be issued for open or paid invoices.", param="invoice")
    if p.get("reason") and p["reason"] not in REASONS:
        raise invalid(f"Invalid reason: {p['reason']}", param="reason")
    cn_id = new_id("cn_", 24)
    lines = _credit_lines(state, invoice, p, cn_id)
    subtotal = sum(ln["amount"] for ln in lines)
    tax = sum(t["amount"] for ln in lines for t in ln["taxes"])
    total = subtotal + tax
    already = _credited(state, invoice["id"])
    if total <= 0 or total + already > invoice["total"]:
        raise invalid(
            f"The credit note total ({total}) must be positive and at most the invoice's "
            f"remaining creditable amount ({invoice['total'] - already}).",
            param="amount",
        )
    pre = min(total, invoice["amount_remaining"]) if invoice["status"] == "open" else 0
    post = total - pre
    refund_amount = get_int(p, "refund_amount", 0) or 0
    credit_amount = get_int(p, "credit_amount", 0) or 0
    oob = get_int(p, "out_of_band_amount", 0) or 0
    if post and refund_amount + credit_amount + oob != post:
        raise invalid(
            "The sum of refund_amount, credit_amount and out_of_band_amount must equal the "
            f"credit note's post-payment amount ({post}).",
            param="refund_amount",
        )
    if not post and (refund_amount or credit_amount or oob):
        raise invalid("This credit note has no post-payment amount to refund.")
    refunds = []
    if refund_amount:
        charge = invoice_charge(state, invoice)
        if charge is None:
            raise invalid("The invoice has no charge to refund.", param="refund_amount")
        refund_obj = refund(state, charge, refund_amount, "requested_by_customer")
        refunds.append(
            {
                "amount_refunded": refund_amount,
                "payment_record_refund": None,
                "refund": refund_obj["id"],
                "type": "refund",
            }
        )
    customer = state.get("customer", invoice["customer"])
    if credit_amount:
        customer["balance"] -= credit_amount
    number_n = sum(1 for c in state.find("credit_note") if c["invoice"] == invoice["id"]) + 1
    note = {
        "id": cn_id,
        "object": "credit_note",
        "amount": total,
        "amount_shipping": 0,
        "created": state.now(),
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_balance_transaction": None,
        "discount_amount": 0,
        "discount_amounts": [],
        "effective_at": get_int(p, "effective_at") or state.now(),
        "invoice": invoice["id"],
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/credit_notes/{cn_id}/lines",
        },
        "livemode": False,
        "memo": p.get("memo") or None,
        "metadata": merge_metadata({}, p.get("metadata")),
        "number": f"{invoice['number']}-CN-{number_n:02d}",
        "out_of_band_amount": oob or None,
        "pdf": f"{ctx.base_url}/cn/{cn_id}/pdf",
        "post_payment_amount": post,
        "pre_payment_amount": pre,
        "pretax_credit_amounts": [],
        "reason": p.get("reason") or None,
        "refunds": refunds,
        "shipping_cost": None,
        "status": "issued",
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "total": total,
        "total_excluding_tax": subtotal,
        "total_taxes": [t for ln in lines for t in ln["taxes"]],
        "type": "pre_payment" if not post else ("post_payment" if not pre else "mixed"),
        "voided_at": None,
    }
    state.add("credit_note", note)
    before = state.render(invoice)
    invoice["pre_payment_credit_notes_amount"] += pre
    invoice["post_payment_credit_notes_amount"] += post
    if pre:
        invoice["amount_due"] -= pre
        invoice["amount_remaining"] -= pre
    emit(state, "credit_note.created", note)
    if pre and invoice["amount_remaining"] == 0 and invoice["status"] == "open":
        # Fully credited before payment: Stripe marks the invoice paid.
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = state.now()
        emit(state, "invoice.paid", invoice)
    emit(state, "invoice.updated", invoice, before)
    return note


def _credited(state: State, invoice_id: str) -> int:
    return sum(
        c["amount"]
        for c in state.find("credit_note")
        if c["invoice"] == invoice_id and c["status"] == "issued"
    )


def _credit_lines(state: State, invoice: dict, p: dict, cn_id: str) -> list[dict]:
    """`lines[]` (invoice_line_item by amount or quantity, or custom_line_item), or one
    `amount` (tax included) split over net and tax at the invoice's tax ratio."""
    specs = get_list(p, "lines")
    by_id = {ln["id"]: ln for ln in invoice["lines"]["data"]}
    if not specs:
        amount = get_int(p, "amount")
        if amount is None:
            raise invalid("One of amount or lines must be provided.", param="amount")
        net_total = invoice["total_excluding_tax"] or 1
        net = half_up(Decimal(amount) * net_total / invoice["total"]) if invoice["total"] else 0
        taxes = _proportional_taxes(invoice, amount - net, net)
        return [_credit_line(cn_id, "custom_line_item", "Credit", 1, net, net, taxes, None)]
    lines = []
    for n, spec in enumerate(specs):
        kind = spec.get("type") or "invoice_line_item"
        if kind == "invoice_line_item":
            source = by_id.get(spec.get("invoice_line_item"))
            if source is None:
                raise invalid("No such invoice line item.", param=f"lines[{n}][invoice_line_item]")
            amount = int(spec["amount"]) if spec.get("amount") else source["amount"]
            rate = _line_rate(source)
            tax_amount = half_up(Decimal(amount) * rate / 100) if rate is not None else 0
            taxes = [{**t, "amount": tax_amount, "taxable_amount": amount} for t in source["taxes"]]
            qty = int(spec.get("quantity") or source["quantity"] or 1)
            lines.append(
                _credit_line(
                    cn_id, kind, source["description"], qty, None, amount, taxes, source["id"]
                )
            )
        else:
            qty = int(spec.get("quantity") or 1)
            unit = int(require(spec, "unit_amount"))
            lines.append(
                _credit_line(
                    cn_id, kind, spec.get("description") or "", qty, unit, unit * qty, [], None
                )
            )
    return lines


def _line_rate(line: dict) -> Decimal | None:
    for t in line["taxes"]:
        if t["taxable_amount"]:
            return Decimal(t["amount"]) * 100 / Decimal(t["taxable_amount"])
    return None


def _proportional_taxes(invoice: dict, tax: int, net: int) -> list[dict]:
    if not invoice["total_taxes"] or not tax:
        return []
    first = invoice["total_taxes"][0]
    return [{**first, "amount": tax, "taxable_amount": net}]


def _credit_line(cn_id, kind, description, quantity, unit, amount, taxes, invoice_line) -> dict:
    return {
        "id": new_id("cnli_", 24),
        "object": "credit_note_line_item",
        "amount": amount,
        "description": description,
        "discount_amount": 0,
        "discount_amounts": [],
        "invoice_line_item": invoice_line,
        "livemode": False,
        "metadata": {},
        "pretax_credit_amounts": [],
        "quantity": quantity,
        "taxes": taxes,
        "type": kind,
        "unit_amount": unit,
        "unit_amount_decimal": str(unit) if unit is not None else None,
    }


def retrieve_credit_note(ctx: Ctx) -> dict:
    return ctx.state.get("credit_note", ctx.args["id"])


def list_credit_notes(ctx: Ctx) -> dict:
    objs = ctx.state.find("credit_note")
    for key in ("invoice", "customer"):
        if ctx.params.get(key):
            objs = [c for c in objs if c[key] == ctx.params[key]]
    return ctx.page(objs)


def credit_note_lines(ctx: Ctx) -> dict:
    return ctx.page(list(retrieve_credit_note(ctx)["lines"]["data"]))


def void_credit_note(ctx: Ctx) -> dict:
    note = retrieve_credit_note(ctx)
    if note["status"] == "void":
        raise invalid("This credit note is already void.")
    if note["refunds"]:
        raise invalid("A credit note with a refund can't be voided.")
    invoice = ctx.state.get("invoice", note["invoice"])
    before = ctx.state.render(invoice)
    note["status"] = "void"
    note["voided_at"] = ctx.state.now()
    invoice["pre_payment_credit_notes_amount"] -= note["pre_payment_amount"]
    invoice["post_payment_credit_notes_amount"] -= note["post_payment_amount"]
    emit(ctx.state, "credit_note.voided", note)
    emit(ctx.state, "invoice.updated", invoice, before)
    return note

"""Subscriptions: create, update (prorations, pending updates), cancel, cycle."""

from __future__ import annotations

import copy

from .context import Ctx
from .errors import StripeFakeError, card_declined, invalid
from .events import emit
from .forms import check_known, get_bool, get_int, get_list, merge_metadata, require
from .invoices import (
    attempt_payment,
    build_invoice,
    collect,
    invoice_subscription_id,
    period_line,
    proration_lines,
    retrieve_invoice,
    usage_line,
)
from .periods import add_interval, anchor_day
from .state import State, new_id

CREATE_FIELDS = {
    "customer",
    "items",
    "metadata",
    "payment_behavior",
    "proration_behavior",
    "cancel_at_period_end",
    "default_payment_method",
    "collection_method",
    "description",
    "off_session",
    "payment_settings",
    "discounts",
}
UPDATE_FIELDS = {
    "discounts",
    "items",
    "metadata",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "cancel_at_period_end",
    "default_payment_method",
    "description",
    "off_session",
    "billing_cycle_anchor",
    "payment_settings",
    "cancel_at",
    "cancellation_details",
}
PENDING_FIELDS = {
    "items",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "billing_cycle_anchor",
    "metadata",
}
PAYMENT_BEHAVIORS = {
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
}
PRORATION_BEHAVIORS = {"create_prorations", "always_invoice", "none"}

# --- items --------------------------------------------------------------------------


def recurring_price(state: State, price_id, param: str) -> dict:
    price = state.get("price", price_id, param)
    if not price["recurring"]:
        raise invalid(
            f"The price specified is set to `type=one_time` but this field only accepts "
            f"prices with `type=recurring`: {price['id']}",
            param=param,
        )
    if not price["active"]:
        raise invalid(f"The price specified is inactive: {price['id']}", param=param)
    return price


def new_item(state: State, spec: dict, sub_id: str, period: tuple[int, int], n: int) -> dict:
    price = recurring_price(state, require(spec, "price"), f"items[{n}][price]")
    metered = price["recurring"]["usage_type"] == "metered"
    if metered and spec.get("quantity"):
        raise invalid("Quantity cannot be set for metered prices.", param=f"items[{n}][quantity]")
    return {
        "id": new_id("si_", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": state.now(),
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": merge_metadata({}, spec.get("metadata")),
        "price": copy.deepcopy(price),
        "quantity": None if metered else get_int(spec, "quantity", 1),
        "subscription": sub_id,
        "tax_rates": [],
    }


def planned_items(state: State, sub: dict, specs: list) -> list[dict]:
    """The item list after applying `items[n][id|price|quantity|deleted]`."""
    items = {i["id"]: copy.deepcopy(i) for i in sub["items"]["data"]}
    period = _period(sub)
    for n, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise invalid("Invalid items", param=f"items[{n}]")
        if not spec.get("id"):
            item = new_item(state, spec, sub["id"], period, n)
            items[item["id"]] = item
            continue
        if spec["id"] not in items:
            raise invalid(f"No such subscription item: '{spec['id']}'", param=f"items[{n}][id]")
        if get_bool(spec, "deleted", False):
            del items[spec["id"]]
            continue
        _change_item(state, items[spec["id"]], spec, n)
    if not items:
        raise invalid("A subscription needs at least one item.", param="items")
    return list(items.values())


def _change_item(state: State, item: dict, spec: dict, n: int) -> None:
    if spec.get("price"):
        item["price"] = copy.deepcopy(recurring_price(state, spec["price"], f"items[{n}][price]"))
    if item["price"]["recurring"]["usage_type"] == "metered":
        item["quantity"] = None
    elif spec.get("quantity") not in (None, ""):
        item["quantity"] = get_int(spec, "quantity")
    item["metadata"] = merge_metadata(item["metadata"], spec.get("metadata"))


def _check_compatible(items: list[dict]) -> None:
    prices = [i["price"] for i in items]
    if len({p["currency"] for p in prices}) > 1:
        raise invalid("All prices on a subscription must have the same currency.", param="items")
    cycles = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in prices}
    if len(cycles) > 1:
        raise invalid("All prices on a subscription must have the same interval.", param="items")


def _period(sub: dict) -> tuple[int, int]:
    first = sub["items"]["data"][0]
    return first["current_period_start"], first["current_period_end"]


def _set_items(state: State, sub: dict, items: list[dict]) -> None:
    for old in sub["items"]["data"]:
        state.objects.get("subscription_item", {}).pop(old["id"], None)
    sub["items"]["data"] = items
    sub["items"]["total_count"] = len(items)
    for item in items:
        state.objects.setdefault("subscription_item", {})[item["id"]] = item
        state.order.setdefault(item["id"], state.order.get(sub["id"], 0))
    sub["currency"] = items[0]["price"]["currency"]


# --- create -------------------------------------------------------------------------


def create_subscription(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, CREATE_FIELDS)
    behavior = _choice(p, "payment_behavior", PAYMENT_BEHAVIORS, "allow_incomplete")
    customer = ctx.state.get("customer", require(p, "customer"), "customer")
    specs = get_list(p, "items")
    if not specs:
        raise invalid("Missing required param: items.", param="items", code="parameter_missing")
    sub = start_subscription(
        ctx.state,
        ctx.base_url,
        customer_id=customer["id"],
        specs=specs,
        metadata=p.get("metadata"),
        payment_behavior=behavior,
        description=p.get("description"),
        discounts=p.get("discounts"),
    )
    if get_bool(p, "cancel_at_period_end", False):
        _set_cancel_at_period_end(ctx.state, sub, True)
    return sub


def start_subscription(
    state: State,
    base_url: str,
    *,
    customer_id: str,
    specs: list,
    metadata=None,
    payment_behavior: str = "allow_incomplete",
    description: str | None = None,
    fails: bool | None = None,
    discounts=None,
) -> dict:
    """A new subscription with its first invoice (paid unless the card fails)."""
    now = state.now()
    sub_id = new_id("sub_", 24)
    first_price = recurring_price(state, require(specs[0], "price"), "items[0][price]")
    rec = first_price["recurring"]
    period = (now, add_interval(now, rec["interval"], rec["interval_count"]))
    items = [new_item(state, spec, sub_id, period, n) for n, spec in enumerate(specs)]
    _check_compatible(items)
    if fails is None:
        fails = _first_payment_fails(state, customer_id, items)
    if fails and payment_behavior == "error_if_incomplete":
        raise card_declined()
    sub = _new_subscription(state, sub_id, customer_id, now, metadata, description)
    _set_items(state, sub, items)
    state.add("subscription", sub)
    if discounts:
        from .finance import attach_discounts

        attach_discounts(state, sub, discounts)
    mark = (len(state.pending_events), state.seq)
    invoice = _first_invoice(state, sub, period, base_url, fails, payment_behavior)
    sub["latest_invoice"] = invoice["id"]
    if invoice["status"] != "paid":
        sub["status"] = "incomplete"
    _emit_before(state, mark, "customer.subscription.created", sub)
    return sub


def _emit_before(state: State, mark: tuple[int, int], event_type: str, obj: dict) -> None:
    """Emit an event that belongs before the events recorded since `mark`
    (the subscription is created before its first invoice), in its final state."""
    event = emit(state, event_type, obj)
    state.pending_events.insert(mark[0], state.pending_events.pop())
    state.order[event["id"]] = mark[1] + 0.5


def _first_payment_fails(state: State, customer_id: str, items: list[dict]) -> bool:
    from .catalog import price_amount
    from .invoices import payment_fails

    due = sum(
        price_amount(i["price"], i["quantity"] or 0) for i in items if i["quantity"] is not None
    )
    return due > 0 and payment_fails(state, customer_id)


def _new_subscription(state: State, sub_id, customer_id, now, metadata, description) -> dict:
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_mode": {"flexible": None, "type": "classic"},
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": "usd",
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "description": description or None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": merge_metadata({}, metadata),
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "active",
        "test_clock": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def _first_invoice(state, sub, period, base_url, fails, payment_behavior) -> dict:
    lines = [period_line(state, i, sub["id"], period) for i in _licensed(sub)]
    invoice = build_invoice(
        state,
        customer_id=sub["customer"],
        lines=lines,
        reason="subscription_create",
        subscription=sub,
        period=(period[0], period[0]),
    )
    if payment_behavior == "default_incomplete" and invoice["amount_due"] > 0:
        from .invoices import finalize

        finalize(state, invoice, base_url)
        return invoice
    collect(state, invoice, base_url, fails=fails)
    return invoice


def _licensed(sub: dict) -> list[dict]:
    return [i for i in sub["items"]["data"] if i["quantity"] is not None]


# --- retrieve / list / search -------------------------------------------------------


def retrieve_subscription(ctx: Ctx) -> dict:
    return ctx.state.get("subscription", ctx.args["id"])


def list_subscriptions(ctx: Ctx) -> dict:
    p = ctx.params
    objs = ctx.state.find("subscription")
    status = p.get("status")
    if status == "ended":
        objs = [s for s in objs if s["status"] in ("canceled", "incomplete_expired")]
    elif status and status != "all":
        objs = [s for s in objs if s["status"] == status]
    elif not status:
        objs = [s for s in objs if s["status"] != "canceled"]
    if p.get("customer"):
        objs = [s for s in objs if s["customer"] == p["customer"]]
    if p.get("price"):
        objs = [s for s in objs if any(i["price"]["id"] == p["price"] for i in s["items"]["data"])]
    return ctx.page(objs)


# --- update -------------------------------------------------------------------------


def update_subscription(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, UPDATE_FIELDS)
    sub = retrieve_subscription(ctx)
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            param="subscription",
        )
    behavior = _choice(p, "payment_behavior", PAYMENT_BEHAVIORS, "allow_incomplete")
    proration = _choice(p, "proration_behavior", PRORATION_BEHAVIORS, "create_prorations")
    if behavior == "pending_if_incomplete":
        for key in p:
            if key not in PENDING_FIELDS and key != "expand":
                raise invalid(
                    f"You cannot pass `{key}` with payment_behavior=pending_if_incomplete.",
                    param=key,
                )
    before = ctx.state.render(sub)
    if "discounts" in p:
        from .finance import attach_discounts

        attach_discounts(ctx.state, sub, p["discounts"] or [])
    if "items" in p:
        change = _ItemChange(ctx, sub, proration, behavior)
        change.run()
    _apply_simple_fields(ctx.state, sub, p, skip_metadata=_is_pending(sub, p, behavior))
    if ctx.state.render(sub) != before:
        emit(ctx.state, "customer.subscription.updated", sub, before)
    return sub


def _is_pending(sub: dict, p: dict, behavior: str) -> bool:
    return behavior == "pending_if_incomplete" and sub["pending_update"] is not None


def _apply_simple_fields(state: State, sub: dict, p: dict, *, skip_metadata: bool) -> None:
    if not skip_metadata:
        sub["metadata"] = merge_metadata(sub["metadata"], p.get("metadata"))
    if "description" in p:
        sub["description"] = p["description"] or None
    if "default_payment_method" in p:
        sub["default_payment_method"] = p["default_payment_method"] or None
    if "cancel_at_period_end" in p:
        _set_cancel_at_period_end(state, sub, get_bool(p, "cancel_at_period_end"))
    if isinstance(p.get("cancellation_details"), dict):
        details = p["cancellation_details"]
        sub["cancellation_details"].update(
            {k: details[k] or None for k in ("comment", "feedback") if k in details}
        )


def _set_cancel_at_period_end(state: State, sub: dict, value: bool) -> None:
    sub["cancel_at_period_end"] = value
    sub["cancel_at"] = _period(sub)[1] if value else None
    sub["canceled_at"] = state.now() if value else None
    sub["cancellation_details"]["reason"] = "cancellation_requested" if value else None


class _ItemChange:
    """An item change with its prorations, invoiced now or later, or held as a
    pending update when payment fails under `pending_if_incomplete`."""

    def __init__(self, ctx: Ctx, sub: dict, proration: str, behavior: str) -> None:
        self.ctx, self.state, self.sub = ctx, ctx.state, sub
        self.proration, self.behavior = proration, behavior
        self.items = planned_items(self.state, sub, get_list(ctx.params, "items"))
        _check_compatible(self.items)
        self.at = get_int(ctx.params, "proration_date") or self.state.now()

    def run(self) -> None:
        lines = []
        if self.proration != "none":
            lines = proration_lines(
                self.state, self.sub["id"], self.sub["items"]["data"], self.items, at=self.at
            )
        if self.proration == "always_invoice" and lines:
            self._invoice_now(lines)
            return
        for ln in lines:
            _add_invoice_item(self.state, self.sub, ln)
        self._apply()

    def _invoice_now(self, lines: list[dict]) -> None:
        from .invoices import payment_fails

        fails = (
            payment_fails(self.state, self.sub["customer"])
            if sum(ln["amount"] for ln in lines) > 0
            else False
        )
        if fails and self.behavior == "error_if_incomplete":
            raise card_declined()
        lines += _take_invoice_items(self.state, self.sub)
        invoice = build_invoice(
            self.state,
            customer_id=self.sub["customer"],
            lines=lines,
            reason="subscription_update",
            subscription=self.sub,
            period=(self.at, self.at),
        )
        paid = collect(self.state, invoice, self.ctx.base_url, fails=fails)
        self.sub["latest_invoice"] = invoice["id"]
        if paid or self.behavior != "pending_if_incomplete":
            self._apply()
            if not paid:
                self.sub["status"] = "past_due"
            return
        self._hold(invoice)

    def _apply(self) -> None:
        _set_items(self.state, self.sub, self.items)
        self.sub["pending_update"] = None
        self.state.pending_updates.pop(self.sub["id"], None)

    def _hold(self, invoice: dict) -> None:
        self.sub["pending_update"] = {
            "billing_cycle_anchor": None,
            "expires_at": self.state.now() + 23 * 3600,
            "subscription_items": copy.deepcopy(self.items),
            "trial_end": None,
            "trial_from_plan": None,
        }
        self.state.pending_updates[self.sub["id"]] = {
            "invoice": invoice["id"],
            "items": self.items,
            "metadata": self.ctx.params.get("metadata"),
        }


def after_invoice_paid(state: State, invoice: dict) -> None:
    """A late payment applies the subscription's pending update, or clears past_due."""
    sub_id = invoice_subscription_id(invoice)
    sub = state.objects.get("subscription", {}).get(sub_id or "")
    if sub is None:
        return
    before = state.render(sub)
    pending = state.pending_updates.get(sub["id"])
    if pending and pending["invoice"] == invoice["id"]:
        _set_items(state, sub, pending["items"])
        sub["metadata"] = merge_metadata(sub["metadata"], pending["metadata"])
        sub["pending_update"] = None
        del state.pending_updates[sub["id"]]
    if sub["status"] in ("past_due", "incomplete", "unpaid"):
        sub["status"] = "active"
    if state.render(sub) != before:
        emit(state, "customer.subscription.updated", sub, before)


def _add_invoice_item(state: State, sub: dict, ln: dict) -> None:
    """A proration waiting for the next invoice (`create_prorations`)."""
    item = {
        "id": new_id("ii_", 24),
        "object": "invoiceitem",
        "amount": ln["amount"],
        "currency": ln["currency"],
        "customer": sub["customer"],
        "date": state.now(),
        "description": ln["description"],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": sub["id"],
                "subscription_item": ln["parent"]["subscription_item_details"]["subscription_item"],
            },
        },
        "period": dict(ln["period"]),
        "pricing": ln["pricing"],
        "proration": True,
        "quantity": ln["quantity"],
        "_line": ln,
    }
    ln["parent"]["subscription_item_details"]["invoice_item"] = item["id"]
    state.add("invoiceitem", item)


def _take_invoice_items(state: State, sub: dict, *, consume: bool = True) -> list[dict]:
    lines = []
    for item in state.find("invoiceitem")[::-1]:
        details = item["parent"]["subscription_details"]
        if item["invoice"] is None and details["subscription"] == sub["id"]:
            lines.append(copy.deepcopy(item["_line"]))
            if consume:
                item["invoice"] = "pending"
    return lines


# --- cancel -------------------------------------------------------------------------


def cancel_subscription(ctx: Ctx) -> dict:
    check_known(ctx.params, {"invoice_now", "prorate", "cancellation_details"})
    sub = retrieve_subscription(ctx)
    if sub["status"] == "canceled":
        raise invalid(f"No such subscription: '{sub['id']}' is already canceled.", param="id")
    end_subscription(ctx.state, sub, reason="cancellation_requested")
    return sub


def end_subscription(state: State, sub: dict, *, reason: str, at: int | None = None) -> None:
    now = at or state.now()
    sub.update(status="canceled", ended_at=now, canceled_at=sub["canceled_at"] or now)
    sub["cancellation_details"]["reason"] = sub["cancellation_details"]["reason"] or reason
    sub["pending_update"] = None
    state.pending_updates.pop(sub["id"], None)
    emit(state, "customer.subscription.deleted", sub)


# --- the next period (test clock) ---------------------------------------------------


def advance(state: State, sub_id: str, base_url: str) -> dict:
    """Move a subscription to its next period: cancel if asked to, else invoice the new
    period (+ metered usage + pending prorations) and try to charge it."""
    sub = state.get("subscription", sub_id)
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise StripeFakeError(400, "The subscription has ended.", code="subscription_ended")
    start, end = _period(sub)
    state.clock_offset += max(0, end - state.now())
    _expire_pending_update(state, sub)
    if sub["cancel_at_period_end"]:
        usage = _usage_lines(state, sub, (start, end))
        if any(ln["amount"] for ln in usage):
            _charge(state, sub, usage, "subscription_cycle", (start, end), base_url)
        end_subscription(state, sub, reason="cancellation_requested", at=end)
        return {"subscription": state.render(sub), "invoice": None}
    before = state.render(sub)
    rec = sub["items"]["data"][0]["price"]["recurring"]
    new_end = add_interval(
        end, rec["interval"], rec["interval_count"], anchor_day(sub["billing_cycle_anchor"])
    )
    lines = _usage_lines(state, sub, (start, end))
    lines += _take_invoice_items(state, sub)
    for item in sub["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = end, new_end
    lines += [period_line(state, i, sub["id"], (end, new_end)) for i in _licensed(sub)]
    invoice = _charge(state, sub, lines, "subscription_cycle", (start, end), base_url)
    emit(state, "customer.subscription.updated", sub, before)
    return {"subscription": state.render(sub), "invoice": state.render(invoice)}


def _expire_pending_update(state: State, sub: dict) -> None:
    """An unpaid pending update lapses after 23 hours: its changes are discarded."""
    pending = state.pending_updates.get(sub["id"])
    if not pending or sub["pending_update"]["expires_at"] > state.now():
        return
    before = state.render(sub)
    invoice = state.get("invoice", pending["invoice"])
    if invoice["status"] == "open":
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = state.now()
        emit(state, "invoice.voided", invoice)
    sub["pending_update"] = None
    del state.pending_updates[sub["id"]]
    emit(state, "customer.subscription.updated", sub, before)


def _usage_lines(state: State, sub: dict, period: tuple[int, int]) -> list[dict]:
    metered = [i for i in sub["items"]["data"] if i["quantity"] is None]
    return [usage_line(state, i, sub, period, consume=True) for i in metered]


def _charge(state, sub, lines, reason, period, base_url) -> dict:
    invoice = build_invoice(
        state,
        customer_id=sub["customer"],
        lines=lines,
        reason=reason,
        subscription=sub,
        period=period,
    )
    sub["latest_invoice"] = invoice["id"]
    if collect(state, invoice, base_url):
        if sub["status"] == "past_due":
            sub["status"] = "active"
    elif sub["status"] == "active":
        sub["status"] = "past_due"
    return invoice


def _choice(p: dict, key: str, allowed: set[str], default: str) -> str:
    value = p.get(key) or default
    if value not in allowed:
        raise invalid(f"Invalid {key}: must be one of {', '.join(sorted(allowed))}", param=key)
    return value


# --- subscription items ---------------------------------------------------------------


def retrieve_subscription_item(ctx: Ctx) -> dict:
    return ctx.state.get("subscription_item", ctx.args["id"])


def list_subscription_items(ctx: Ctx) -> dict:
    sub = ctx.state.get("subscription", require(ctx.params, "subscription"), "subscription")
    return ctx.page(list(sub["items"]["data"]))


def update_subscription_item(ctx: Ctx) -> dict:
    """`POST /v1/subscription_items/{id}`: the same change as through the subscription."""
    p = ctx.params
    check_known(
        p,
        {
            "price",
            "quantity",
            "metadata",
            "proration_behavior",
            "proration_date",
            "payment_behavior",
            "off_session",
        },
    )
    item = retrieve_subscription_item(ctx)
    spec = {"id": item["id"], **{k: p[k] for k in ("price", "quantity", "metadata") if k in p}}
    passed = {
        k: p[k] for k in ("proration_behavior", "proration_date", "payment_behavior") if k in p
    }
    sub_ctx = Ctx(
        ctx.state, {"items": [spec], **passed}, ctx.base_url, ctx.path, {"id": item["subscription"]}
    )
    sub = update_subscription(sub_ctx)
    return ctx.state.objects["subscription_item"].get(item["id"]) or sub["items"]["data"][0]


def exhaust_retries(state: State, sub_id: str) -> dict:
    """Stripe's last automatic retry of a past_due subscription failed and the
    account's setting is "mark the subscription as unpaid" (a test control)."""
    sub = state.get("subscription", sub_id)
    if sub["status"] != "past_due":
        raise StripeFakeError(400, "Only a past_due subscription can run out of retries.")
    before = state.render(sub)
    sub["status"] = "unpaid"
    emit(state, "customer.subscription.updated", sub, before)
    return state.render(sub)


# Here, not in invoices.py: paying an invoice resolves its subscription's
# pending update (the one place invoices would need subscriptions).
def pay_invoice(ctx: Ctx) -> dict:
    """Retry an open invoice (after the card was fixed); resolves a pending update."""
    check_known(ctx.params, {"payment_method", "off_session", "paid_out_of_band"})
    invoice = retrieve_invoice(ctx)
    if invoice["status"] != "open":
        raise invalid(f"Invoice is already {invoice['status']}.", param="invoice")
    if ctx.params.get("payment_method"):
        from .catalog import FAILING_CARDS

        fails = ctx.params["payment_method"] in FAILING_CARDS
    else:
        fails = None
    if ctx.params.get("paid_out_of_band") == "true":
        fails = False
    if not attempt_payment(ctx.state, invoice, fails=fails):
        raise card_declined({"payment_intent": None})
    after_invoice_paid(ctx.state, invoice)
    return invoice

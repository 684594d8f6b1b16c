"""`POST /v1/invoices/create_preview`: what an invoice would be, without creating it."""

from __future__ import annotations

import copy

from .context import Ctx
from .errors import invalid
from .forms import check_known, get_bool, get_int, get_list, require
from .invoices import build_invoice, period_line, proration_lines, usage_line
from .periods import add_interval, anchor_day
from .subscriptions import (
    PRORATION_BEHAVIORS,
    _check_compatible,
    _choice,
    _period,
    _take_invoice_items,
    new_item,
    planned_items,
)


def create_preview(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(
        p,
        {
            "customer",
            "subscription",
            "subscription_details",
            "preview_mode",
            "currency",
            "automatic_tax",
        },
    )
    details = p.get("subscription_details") or {}
    if details and not isinstance(details, dict):
        raise invalid("Invalid subscription_details", param="subscription_details")
    if p.get("subscription"):
        return _preview_change(ctx, details)
    return _preview_new(ctx, details)


def _preview_change(ctx: Ctx, details: dict) -> dict:
    state = ctx.state
    sub = state.get("subscription", ctx.params["subscription"], "subscription")
    if ctx.params.get("customer") and ctx.params["customer"] != sub["customer"]:
        raise invalid("The subscription does not belong to that customer.", param="customer")
    proration = _choice(details, "proration_behavior", PRORATION_BEHAVIORS, "create_prorations")
    specs = get_list(details, "items")
    items = planned_items(state, sub, specs) if specs else copy.deepcopy(sub["items"]["data"])
    _check_compatible(items)
    at = get_int(details, "proration_date") or state.now()
    lines = []
    if proration != "none":
        lines = proration_lines(state, sub["id"], sub["items"]["data"], items, at=at)
    if proration == "always_invoice":
        lines += _take_invoice_items(state, sub, consume=False)
        return _build(ctx, sub, lines, "subscription_update", (at, at))
    upcoming = _build(
        ctx, sub, _next_cycle(ctx, sub, items, details) + lines, "upcoming", _period(sub)
    )
    upcoming["next_payment_attempt"] = _period(sub)[1]
    return upcoming


def _next_cycle(ctx: Ctx, sub: dict, items: list[dict], details: dict) -> list[dict]:
    state = ctx.state
    start, end = _period(sub)
    lines = [
        usage_line(state, i, sub, (start, end), consume=False)
        for i in items
        if i["quantity"] is None
    ]
    lines += _take_invoice_items(state, sub, consume=False)
    if get_bool(details, "cancel_at_period_end", sub["cancel_at_period_end"]):
        return lines
    rec = items[0]["price"]["recurring"]
    new_end = add_interval(
        end, rec["interval"], rec["interval_count"], anchor_day(sub["billing_cycle_anchor"])
    )
    return lines + [
        period_line(state, i, sub["id"], (end, new_end)) for i in items if i["quantity"] is not None
    ]


def _preview_new(ctx: Ctx, details: dict) -> dict:
    state = ctx.state
    customer = state.get("customer", require(ctx.params, "customer"), "customer")
    specs = get_list(details, "items")
    if not specs:
        raise invalid(
            "Pass subscription, or subscription_details[items] for a new subscription.",
            param="subscription_details[items]",
            code="parameter_missing",
        )
    now = state.now()
    price = state.get("price", require(specs[0], "price"), "subscription_details[items][0][price]")
    rec = price["recurring"] or {"interval": "month", "interval_count": 1}
    period = (now, add_interval(now, rec["interval"], rec["interval_count"]))
    items = [new_item(state, spec, None, period, n) for n, spec in enumerate(specs)]
    _check_compatible(items)
    lines = [period_line(state, i, None, period) for i in items if i["quantity"] is not None]
    invoice = build_invoice(
        state,
        customer_id=customer["id"],
        lines=lines,
        reason="subscription_create",
        subscription=None,
        period=(now, now),
        preview=True,
    )
    return invoice


def _build(ctx: Ctx, sub: dict, lines: list[dict], reason: str, period) -> dict:
    return build_invoice(
        ctx.state,
        customer_id=sub["customer"],
        lines=lines,
        reason=reason,
        subscription=sub,
        period=period,
        preview=True,
    )

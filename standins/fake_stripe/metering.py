"""Billing Meters and Meter Events (idempotent by `identifier`), with event summaries."""

from __future__ import annotations

from decimal import Decimal

from .context import Ctx
from .errors import StripeFakeError, invalid
from .forms import check_known, get_decimal, get_int, merge_metadata, require
from .state import State, new_id


def create_meter(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(
        p,
        {
            "display_name",
            "event_name",
            "default_aggregation",
            "customer_mapping",
            "value_settings",
            "event_time_window",
        },
    )
    event_name = require(p, "event_name")
    if any(m["event_name"] == event_name for m in ctx.state.find("billing.meter")):
        raise invalid(f"A meter with event_name '{event_name}' already exists.", param="event_name")
    aggregation = (p.get("default_aggregation") or {}).get("formula")
    if aggregation not in ("sum", "count", "last"):
        raise invalid("Invalid default_aggregation[formula]", param="default_aggregation")
    now = ctx.state.now()
    mapping = p.get("customer_mapping") or {}
    meter = {
        "id": new_id("mtr_", 24),
        "object": "billing.meter",
        "created": now,
        "customer_mapping": {
            "event_payload_key": mapping.get("event_payload_key") or "stripe_customer_id",
            "type": mapping.get("type") or "by_id",
        },
        "default_aggregation": {"formula": aggregation},
        "display_name": require(p, "display_name"),
        "event_name": event_name,
        "event_time_window": p.get("event_time_window") or None,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": {
            "event_payload_key": (p.get("value_settings") or {}).get("event_payload_key") or "value"
        },
    }
    return ctx.state.add("billing.meter", meter)


def retrieve_meter(ctx: Ctx) -> dict:
    return ctx.state.get("billing.meter", ctx.args["id"])


def list_meters(ctx: Ctx) -> dict:
    objs = ctx.state.find("billing.meter")
    if ctx.params.get("status"):
        objs = [m for m in objs if m["status"] == ctx.params["status"]]
    return ctx.page(objs)


def meter_for_event(state: State, event_name: str) -> dict:
    for meter in state.find("billing.meter"):
        if meter["event_name"] == event_name and meter["status"] == "active":
            return meter
    raise invalid(f"No active meter was found for event_name '{event_name}'.", param="event_name")


def create_meter_event(ctx: Ctx) -> dict:
    """Same `identifier` twice = one event: the retry gets the first event back."""
    p = ctx.params
    check_known(p, {"event_name", "payload", "identifier", "timestamp"})
    identifier = p.get("identifier") or new_id("mev_", 20)
    if identifier in ctx.state.meter_identifiers:
        return ctx.state.meter_identifiers[identifier]["event"]
    meter = meter_for_event(ctx.state, require(p, "event_name"))
    payload = p.get("payload")
    if not isinstance(payload, dict):
        raise invalid("Missing required param: payload.", param="payload", code="parameter_missing")
    customer_key = meter["customer_mapping"]["event_payload_key"]
    value_key = meter["value_settings"]["event_payload_key"]
    customer = ctx.state.get("customer", payload.get(customer_key), f"payload[{customer_key}]")
    value = get_decimal(payload, value_key)
    if value is None or value < 0:
        raise invalid(f"payload[{value_key}] must be a non-negative number", param="payload")
    now = ctx.state.now()
    event = {
        "object": "billing.meter_event",
        "created": now,
        "event_name": meter["event_name"],
        "identifier": identifier,
        "livemode": False,
        "payload": merge_metadata({}, payload),
        "timestamp": get_int(p, "timestamp", now),
    }
    record = {
        "event": event,
        "meter": meter["id"],
        "customer": customer["id"],
        "value": value,
        "invoiced": False,
    }
    ctx.state.meter_identifiers[identifier] = record
    ctx.state.meter_events.append(record)
    return event


def meter_total(
    state: State,
    *,
    meter_id: str,
    customer_id: str,
    start: int | None = None,
    end: int | None = None,
    uninvoiced_only: bool = False,
) -> Decimal:
    records = [
        r
        for r in state.meter_events
        if r["meter"] == meter_id
        and r["customer"] == customer_id
        and (start is None or r["event"]["timestamp"] >= start)
        and (end is None or r["event"]["timestamp"] < end)
        and not (uninvoiced_only and r["invoiced"])
    ]
    meter = state.get("billing.meter", meter_id)
    formula = meter["default_aggregation"]["formula"]
    if formula == "count":
        return Decimal(len(records))
    if formula == "last":
        return records[-1]["value"] if records else Decimal(0)
    return sum((r["value"] for r in records), Decimal(0))


def take_uninvoiced_usage(state: State, *, meter_id: str, customer_id: str) -> int:
    """Usage since the last invoice, marked invoiced (whole units, rounded up)."""
    total = meter_total(state, meter_id=meter_id, customer_id=customer_id, uninvoiced_only=True)
    for record in state.meter_events:
        if record["meter"] == meter_id and record["customer"] == customer_id:
            record["invoiced"] = True
    return int(total.to_integral_value(rounding="ROUND_CEILING"))


def event_summaries(ctx: Ctx) -> dict:
    p = ctx.params
    meter = retrieve_meter(ctx)
    customer = ctx.state.get("customer", require(p, "customer"), "customer")
    start = get_int(p, "start_time")
    end = get_int(p, "end_time")
    if start is None or end is None:
        raise StripeFakeError(
            400, "Missing required param: start_time/end_time.", code="parameter_missing"
        )
    total = meter_total(
        ctx.state, meter_id=meter["id"], customer_id=customer["id"], start=start, end=end
    )
    summary = {
        "id": new_id("mtrusg_", 24),
        "object": "billing.meter_event_summary",
        "aggregated_value": int(total) if total == total.to_integral_value() else float(total),
        "end_time": end,
        "livemode": False,
        "meter": meter["id"],
        "start_time": start,
    }
    return {"object": "list", "data": [summary], "has_more": False, "url": ctx.path}

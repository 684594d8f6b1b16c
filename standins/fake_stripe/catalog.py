"""Customers, Products and Prices."""

from __future__ import annotations

from decimal import Decimal

from .context import Ctx
from .errors import StripeFakeError, invalid
from .events import emit
from .forms import (
    check_known,
    get_bool,
    get_decimal,
    get_int,
    get_list,
    merge_metadata,
    require,
)
from .state import new_id

# --- customers ----------------------------------------------------------------------

CUSTOMER_FIELDS = {
    "email",
    "name",
    "description",
    "phone",
    "metadata",
    "payment_method",
    "invoice_settings",
    "preferred_locales",
    "address",
    "tax_exempt",
}
ADDRESS_FIELDS = {"line1", "line2", "postal_code", "city", "state", "country"}


def _address(raw) -> dict | None:
    """`address[line1]=…`; `address=""` clears it."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid address", param="address")
    unknown = set(raw) - ADDRESS_FIELDS
    if unknown:
        raise invalid(f"Received unknown parameter: address[{unknown.pop()}]", param="address")
    return {key: (raw.get(key) or None) for key in sorted(ADDRESS_FIELDS)}


def _tax_exempt(p: dict, current: str) -> str:
    value = p.get("tax_exempt") or current
    if value not in ("none", "exempt", "reverse"):
        raise invalid("Invalid tax_exempt", param="tax_exempt")
    return value


FAILING_CARDS = {
    "pm_card_chargeDeclined",
    "pm_card_visa_chargeDeclined",
    "pm_card_chargeCustomerFail",
    "pm_card_declined",
}


def create_customer(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, CUSTOMER_FIELDS)
    customer = {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": _address(p.get("address")),
        "balance": 0,
        "created": ctx.state.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": p.get("description") or None,
        "email": p.get("email") or None,
        "invoice_prefix": new_id("", 8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": merge_metadata({}, p.get("metadata")),
        "name": p.get("name") or None,
        "phone": p.get("phone") or None,
        "preferred_locales": get_list(p, "preferred_locales"),
        "tax_exempt": _tax_exempt(p, "none"),
        "test_clock": None,
    }
    _apply_payment_method(ctx, customer)
    ctx.state.add("customer", customer)
    emit(ctx.state, "customer.created", customer)
    return customer


def _apply_payment_method(ctx: Ctx, customer: dict) -> None:
    """Test cards by name: `pm_card_visa` pays, `pm_card_chargeDeclined` fails."""
    p = ctx.params
    settings = p.get("invoice_settings") or {}
    pm = settings.get("default_payment_method") or p.get("payment_method")
    if not pm:
        return
    customer["invoice_settings"]["default_payment_method"] = pm
    if pm in FAILING_CARDS:
        ctx.state.failing_customers.add(customer["id"])
    else:
        ctx.state.failing_customers.discard(customer["id"])


def retrieve_customer(ctx: Ctx) -> dict:
    return ctx.state.get("customer", ctx.args["id"])


def update_customer(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, CUSTOMER_FIELDS)
    customer = retrieve_customer(ctx)
    before = ctx.state.render(customer)
    for key in ("email", "name", "description", "phone"):
        if key in p:
            customer[key] = p[key] or None
    if "address" in p:
        customer["address"] = _address(p["address"])
    customer["tax_exempt"] = _tax_exempt(p, customer["tax_exempt"])
    customer["metadata"] = merge_metadata(customer["metadata"], p.get("metadata"))
    _apply_payment_method(ctx, customer)
    emit(ctx.state, "customer.updated", customer, before)
    return customer


def delete_customer(ctx: Ctx) -> dict:
    customer = retrieve_customer(ctx)
    del ctx.state.objects["customer"][customer["id"]]
    emit(ctx.state, "customer.deleted", customer)
    return {"id": customer["id"], "object": "customer", "deleted": True}


def list_customers(ctx: Ctx) -> dict:
    objs = ctx.state.find("customer")
    if ctx.params.get("email"):
        objs = [c for c in objs if c["email"] == ctx.params["email"]]
    return ctx.page(objs)


# --- products -----------------------------------------------------------------------

PRODUCT_FIELDS = {
    "id",
    "name",
    "active",
    "description",
    "metadata",
    "default_price_data",
    "statement_descriptor",
    "unit_label",
    "url",
    "images",
    "marketing_features",
    "tax_code",
    "default_price",
}


def create_product(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, PRODUCT_FIELDS - {"default_price"})
    product_id = p.get("id") or new_id("prod_", 14)
    if product_id in ctx.state.objects.get("product", {}):
        raise StripeFakeError(
            400,
            f"Product already exists: '{product_id}'",
            code="resource_already_exists",
            param="id",
        )
    now = ctx.state.now()
    product = {
        "id": product_id,
        "object": "product",
        "active": get_bool(p, "active", True),
        "created": now,
        "default_price": None,
        "description": p.get("description") or None,
        "images": get_list(p, "images"),
        "livemode": False,
        "marketing_features": get_list(p, "marketing_features"),
        "metadata": merge_metadata({}, p.get("metadata")),
        "name": require(p, "name"),
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": p.get("statement_descriptor") or None,
        "tax_code": p.get("tax_code") or None,
        "type": "service",
        "unit_label": p.get("unit_label") or None,
        "updated": now,
        "url": p.get("url") or None,
    }
    ctx.state.add("product", product)
    emit(ctx.state, "product.created", product)
    return product


def retrieve_product(ctx: Ctx) -> dict:
    return ctx.state.get("product", ctx.args["id"])


def update_product(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, PRODUCT_FIELDS - {"id", "default_price_data"})
    product = retrieve_product(ctx)
    before = ctx.state.render(product)
    for key in ("name", "description", "statement_descriptor", "unit_label", "url"):
        if key in p:
            product[key] = p[key] or None
    if "active" in p:
        product["active"] = get_bool(p, "active")
    if "default_price" in p:
        product["default_price"] = ctx.state.get("price", p["default_price"], "default_price")["id"]
    product["metadata"] = merge_metadata(product["metadata"], p.get("metadata"))
    product["updated"] = ctx.state.now()
    emit(ctx.state, "product.updated", product, before)
    return product


def list_products(ctx: Ctx) -> dict:
    p = ctx.params
    objs = ctx.state.find("product")
    if "active" in p:
        objs = [o for o in objs if o["active"] == get_bool(p, "active")]
    if ids := get_list(p, "ids"):
        objs = [o for o in objs if o["id"] in ids]
    return ctx.page(objs)


# --- prices -------------------------------------------------------------------------

PRICE_FIELDS = {
    "currency",
    "product",
    "product_data",
    "unit_amount",
    "unit_amount_decimal",
    "recurring",
    "lookup_key",
    "transfer_lookup_key",
    "nickname",
    "metadata",
    "active",
    "transform_quantity",
    "billing_scheme",
    "tax_behavior",
}
INTERVALS = {"day", "week", "month", "year"}


def create_price(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(p, PRICE_FIELDS)
    price = {
        "id": new_id("price_", 24),
        "object": "price",
        "active": get_bool(p, "active", True),
        "billing_scheme": "per_unit",
        "created": ctx.state.now(),
        "currency": _currency(p),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": merge_metadata({}, p.get("metadata")),
        "nickname": p.get("nickname") or None,
        "product": _price_product(ctx),
        "recurring": _recurring(p.get("recurring")),
        "tax_behavior": p.get("tax_behavior") or "unspecified",
        "tiers_mode": None,
        "transform_quantity": _transform_quantity(p.get("transform_quantity")),
        "type": "recurring" if p.get("recurring") else "one_time",
        **_unit_amount(p),
    }
    _set_lookup_key(ctx, price)
    ctx.state.add("price", price)
    emit(ctx.state, "price.created", price)
    return price


def _currency(p: dict) -> str:
    currency = str(require(p, "currency")).lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(f"Invalid currency: {currency}", param="currency")
    return currency


def _price_product(ctx: Ctx) -> str:
    p = ctx.params
    if p.get("product"):
        return ctx.state.get("product", p["product"], "product")["id"]
    if isinstance(p.get("product_data"), dict):
        sub = Ctx(
            ctx.state,
            {
                "name": require(p["product_data"], "name"),
                "metadata": p["product_data"].get("metadata"),
            },
            ctx.base_url,
        )
        return create_product(sub)["id"]
    raise invalid("Missing required param: product.", param="product", code="parameter_missing")


def _unit_amount(p: dict) -> dict:
    amount = get_int(p, "unit_amount")
    decimal = get_decimal(p, "unit_amount_decimal")
    if amount is None and decimal is None:
        raise invalid(
            "Missing required param: unit_amount.", param="unit_amount", code="parameter_missing"
        )
    if amount is not None and amount < 0:
        raise invalid("Invalid unit_amount: must be >= 0", param="unit_amount")
    if amount is not None:
        return {"unit_amount": amount, "unit_amount_decimal": str(amount)}
    is_whole = decimal == decimal.to_integral_value()
    return {"unit_amount": int(decimal) if is_whole else None, "unit_amount_decimal": str(decimal)}


def _recurring(raw) -> dict | None:
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid recurring", param="recurring")
    interval = raw.get("interval")
    if interval not in INTERVALS:
        raise invalid(f"Invalid recurring[interval]: {interval}", param="recurring[interval]")
    usage_type = raw.get("usage_type") or "licensed"
    if usage_type not in ("licensed", "metered"):
        raise invalid("Invalid recurring[usage_type]", param="recurring[usage_type]")
    if usage_type == "metered" and not raw.get("meter"):
        raise invalid(
            "Metered prices require recurring[meter].",
            param="recurring[meter]",
            code="parameter_missing",
        )
    return {
        "interval": interval,
        "interval_count": get_int(raw, "interval_count", 1),
        "meter": raw.get("meter") or None,
        "trial_period_days": get_int(raw, "trial_period_days"),
        "usage_type": usage_type,
    }


def _transform_quantity(raw) -> dict | None:
    if not raw:
        return None
    divide_by = get_int(raw, "divide_by")
    if not divide_by or divide_by < 1:
        raise invalid("Invalid transform_quantity[divide_by]", param="transform_quantity")
    rounding = raw.get("round")
    if rounding not in ("up", "down"):
        raise invalid("Invalid transform_quantity[round]", param="transform_quantity[round]")
    return {"divide_by": divide_by, "round": rounding}


def _set_lookup_key(ctx: Ctx, price: dict) -> None:
    """Lookup keys are unique per account; `transfer_lookup_key` moves one over."""
    key = ctx.params.get("lookup_key")
    if key is None:
        return
    if key == "":
        price["lookup_key"] = None
        return
    holder = next(
        (o for o in ctx.state.find("price") if o["lookup_key"] == key and o is not price), None
    )
    if holder is not None:
        if not get_bool(ctx.params, "transfer_lookup_key", False):
            raise invalid(
                f"A price (`{holder['id']}`) already uses that lookup key.",
                param="lookup_key",
            )
        holder["lookup_key"] = None
        emit(ctx.state, "price.updated", holder)
    price["lookup_key"] = key


def retrieve_price(ctx: Ctx) -> dict:
    return ctx.state.get("price", ctx.args["id"])


def update_price(ctx: Ctx) -> dict:
    p = ctx.params
    check_known(
        p, {"active", "lookup_key", "transfer_lookup_key", "metadata", "nickname", "tax_behavior"}
    )
    price = retrieve_price(ctx)
    before = ctx.state.render(price)
    if "active" in p:
        price["active"] = get_bool(p, "active")
    if "nickname" in p:
        price["nickname"] = p["nickname"] or None
    price["metadata"] = merge_metadata(price["metadata"], p.get("metadata"))
    _set_lookup_key(ctx, price)
    emit(ctx.state, "price.updated", price, before)
    return price


def list_prices(ctx: Ctx) -> dict:
    p = ctx.params
    objs = ctx.state.find("price")
    if "active" in p:
        objs = [o for o in objs if o["active"] == get_bool(p, "active")]
    for key in ("product", "currency", "type"):
        if p.get(key):
            objs = [o for o in objs if o[key] == p[key]]
    if keys := get_list(p, "lookup_keys"):
        objs = [o for o in objs if o["lookup_key"] in keys]
    recurring = p.get("recurring") or {}
    for key in ("interval", "usage_type", "meter"):
        if isinstance(recurring, dict) and recurring.get(key):
            objs = [o for o in objs if (o["recurring"] or {}).get(key) == recurring[key]]
    return ctx.page(objs)


def price_amount(price: dict, quantity: int) -> int:
    """Integer minor units for `quantity` of this price (transform_quantity applied)."""
    tq = price.get("transform_quantity")
    if tq:
        whole, rest = divmod(quantity, tq["divide_by"])
        quantity = whole + (1 if rest and tq["round"] == "up" else 0)
    if price["unit_amount"] is not None:
        return price["unit_amount"] * quantity
    exact = Decimal(price["unit_amount_decimal"]) * quantity
    return int(exact.quantize(Decimal(1), rounding="ROUND_HALF_UP"))

"""Money in one place (STYLE.md 5). Amounts are `Decimal` in the currency's
major unit everywhere in Tollgate; Stripe speaks integer minor units. The two
conversions below are the only place that crossing happens."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Stripe's zero-decimal currencies: the amount is already in the smallest unit.
ZERO_DECIMAL_CURRENCIES = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)


def _exponent(currency: str) -> int:
    return 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to what the currency can express (half up, like Stripe)."""
    return Decimal(amount).quantize(Decimal(1).scaleb(-_exponent(currency)), ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Decimal major units → Stripe's integer amount (e.g. 19.99 USD → 1999)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, not {type(amount).__name__}")
    return int(quantize(amount, currency).scaleb(_exponent(currency)))


def from_minor_units(amount: int, currency: str) -> Decimal:
    """Stripe's integer amount → Decimal major units (1999 USD → Decimal('19.99'))."""
    return quantize(Decimal(int(amount)).scaleb(-_exponent(currency)), currency)


def to_decimal_string_minor(amount: Decimal, currency: str) -> str:
    """Stripe's `unit_amount_decimal` (minor units, may carry fractions): used for
    per-token overage prices that are smaller than one cent."""
    return format(Decimal(amount).scaleb(_exponent(currency)).normalize(), "f")


def format_money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "—"
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower())
    value = quantize(amount, currency)
    if value != amount:  # a unit price finer than the currency (per-token rates): show it all
        value = Decimal(amount).normalize()
    text = f"{value:,}"
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


def from_minor_units_decimal(amount: str | int | Decimal, currency: str) -> Decimal:
    """Stripe's `unit_amount_decimal` (minor units, may carry fractions) → an exact
    Decimal unit price in major units (not rounded to the currency)."""
    return Decimal(str(amount)).scaleb(-_exponent(currency)).normalize() + Decimal(0)

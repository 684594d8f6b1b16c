"""Money, one way: Decimal USD, quantized here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

USD_PLACES = Decimal("0.00000001")  # ledger precision: 1e-8 USD per event
MILLION = Decimal(1_000_000)


def quantize_usd(amount: Decimal) -> Decimal:
    return amount.quantize(USD_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens in force for one model at one moment."""

    model: str
    input_per_million: Decimal
    cached_input_per_million: Decimal
    output_per_million: Decimal


def cost_of(
    *, prices: Prices, input_tokens: int, cached_input_tokens: int, output_tokens: int
) -> Decimal:
    """Upstream cost of one call. `input_tokens` includes the cached ones (as
    the provider reports them); cached tokens are billed at their own price."""
    cached = min(cached_input_tokens, input_tokens)
    amount = (
        Decimal(input_tokens - cached) * prices.input_per_million
        + Decimal(cached) * prices.cached_input_per_million
        + Decimal(output_tokens) * prices.output_per_million
    ) / MILLION
    return quantize_usd(amount)

"""Price lookup at event time. The rate card is read from a small in-process
cache (a price change is a new row with its own `effective_from`, so a cached
list still prices every moment right; edits reach other processes within
`TOLLGATE_RATECARD_CACHE_SECONDS`)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.conf import settings

from config.errors import UpstreamUnavailable
from usage.models import RateCard
from usage.money import Prices

_cache: dict[str, tuple[float, list[tuple[datetime, Prices]]]] = {}
_lock = threading.Lock()


class ModelNotPriced(UpstreamUnavailable):
    default_message = (
        "This model is not available: it has no price on the rate card. "
        "Nothing was charged. Please contact support."
    )


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _rows(model: str) -> list[tuple[datetime, Prices]]:
    now = time.monotonic()
    cached = _cache.get(model)
    if cached and cached[0] > now:
        return cached[1]
    rows = [
        (
            r.effective_from,
            Prices(
                model=model,
                input_per_million=r.input_per_million,
                cached_input_per_million=r.cached_input_per_million,
                output_per_million=r.output_per_million,
            ),
        )
        for r in RateCard.objects.filter(model=model).order_by("-effective_from")
    ]
    with _lock:
        _cache[model] = (now + settings.TOLLGATE_RATECARD_CACHE_SECONDS, rows)
    return rows


def price_for(model: str, at: datetime) -> Prices:
    """Prices in force for `model` at `at`; refuses a model without a price."""
    for effective_from, prices in _rows(model):
        if effective_from <= at:
            return prices
    raise ModelNotPriced(details={"reason": "model_not_priced", "model": model})

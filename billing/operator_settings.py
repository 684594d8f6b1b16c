"""The operator's economics settings as the hot path sees them: one row, kept
per process for a few seconds (dropped at once in the process that saves it,
see billing.signals), so the limits provider never adds a query per call."""

from __future__ import annotations

import time

from billing.models_economics import EconomicsSettings

CACHE_SECONDS = 15
_cached: list[tuple[float, EconomicsSettings]] = []


def forget() -> None:
    _cached.clear()


def cached() -> EconomicsSettings:
    if _cached and _cached[0][0] > time.monotonic():
        return _cached[0][1]
    # A read, never an insert: the hot path must not write. Defaults until saved.
    row = EconomicsSettings.objects.filter(pk=1).first() or EconomicsSettings(pk=1)
    _cached[:] = [(time.monotonic() + CACHE_SECONDS, row)]
    return row

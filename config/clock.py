"""The one clock: business "now" for every app.

Everything that decides with the time — billing periods, reservation staleness,
alerts, dunning, retention — asks `clock.now()`, never `timezone.now()` directly
(a test enforces it), so tests and the demo's "advance period" can move time for
the whole process without patching (after pretix's time machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cache

from django.utils import timezone

_frozen: datetime | None = None
_offset = timedelta(0)


@cache  # set before a process starts; read once (now() runs ~10 times per metered call)
def _env_offset() -> timedelta:
    # Lets every process of a demo run (web, worker, beat) share one moved clock.
    raw = os.environ.get("TOLLGATE_CLOCK_OFFSET_SECONDS", "")
    return timedelta(seconds=int(raw)) if raw.strip().lstrip("-").isdigit() else timedelta(0)


def now() -> datetime:
    """Aware UTC now, as moved by `travel`/`freeze`/the environment offset."""
    if _frozen is not None:
        return _frozen
    return timezone.now() + _offset + _env_offset()


def today_utc() -> datetime:
    return now().replace(hour=0, minute=0, second=0, microsecond=0)


def freeze(at: datetime) -> None:
    """Stop the clock at `at` (aware) until `reset()`."""
    global _frozen
    if timezone.is_naive(at):
        raise ValueError("clock.freeze needs an aware datetime")
    _frozen = at


def shift(by: timedelta) -> None:
    """Move a running clock by `by` (cumulative)."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen += by
    else:
        _offset += by


def reset() -> None:
    global _frozen, _offset
    _frozen = None
    _offset = timedelta(0)


@contextmanager
def travel(to: datetime, *, frozen: bool = True) -> Iterator[None]:
    """Run the block at `to`: frozen there, or running from there."""
    global _frozen, _offset
    saved = (_frozen, _offset)
    if frozen:
        freeze(to)
    else:
        _frozen = None
        _offset = to - timezone.now()
    try:
        yield
    finally:
        _frozen, _offset = saved

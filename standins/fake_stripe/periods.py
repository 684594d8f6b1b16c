"""Billing periods and proration, in integer seconds and integer minor units."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta


def add_interval(ts: int, interval: str, count: int = 1, anchor_day: int | None = None) -> int:
    """`ts` moved forward by `count` intervals; months keep the anchor day when they can
    (Jan 31 -> Feb 28 -> Mar 31), as Stripe's billing cycle does."""
    start = datetime.fromtimestamp(ts, UTC)
    if interval == "day":
        return int((start + timedelta(days=count)).timestamp())
    if interval == "week":
        return int((start + timedelta(weeks=count)).timestamp())
    months = count * (12 if interval == "year" else 1)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(anchor_day or start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def anchor_day(ts: int) -> int:
    return datetime.fromtimestamp(ts, UTC).day


def prorate(amount: int, *, start: int, end: int, at: int) -> int:
    """The share of `amount` for the time left in [start, end) from `at`, rounded half up."""
    total = end - start
    remaining = min(max(end - at, 0), total)
    if total <= 0:
        return 0
    return (amount * remaining * 2 + total) // (2 * total)


def day_label(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y")

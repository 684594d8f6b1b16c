"""Parsing the `start` / `end` of a period as the API and pages take them:
a date (`2026-11-01`; `end` inclusive, so the period is [start 00:00, end+1 00:00)
UTC) or an ISO datetime (taken exactly). Bad input is a 400."""

from __future__ import annotations

import datetime as dt

from config.errors import InvalidRequest


def parse_bound(value: str | None, *, field: str, is_end: bool) -> dt.datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if is_end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{field} must be a date (YYYY-MM-DD) or an ISO datetime.",
            details={field: ["invalid date"]},
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


Bounds = tuple[dt.datetime | None, dt.datetime | None]


def parse_period(start: str | None, end: str | None) -> Bounds:
    lo = parse_bound(start, field="start", is_end=False)
    hi = parse_bound(end, field="end", is_end=True)
    if lo and hi and lo >= hi:
        raise InvalidRequest("The start must be before the end.", details={"end": ["before start"]})
    return lo, hi


def month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    nxt = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, nxt

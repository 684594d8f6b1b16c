"""One way to show dates, times and money on every page and email (a builtin
template library: no {% load %} needed).

    {{ value|day }}    →  2 Dec 2026
    {{ value|when }}   →  2 Dec 2026, 14:03 UTC
    {{ amount|usd }}   →  $1,234.50

Accepts datetimes, dates and ISO 8601 strings (as the selectors return them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


def _as_datetime(value) -> datetime | date | None:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


@register.filter
def day(value) -> str:
    parsed = _as_datetime(value)
    if parsed is None:
        return ""
    if isinstance(parsed, datetime):
        parsed = parsed.astimezone(UTC) if parsed.tzinfo else parsed
    return f"{parsed.day} {parsed:%b %Y}"


@register.filter
def when(value) -> str:
    parsed = _as_datetime(value)
    if parsed is None:
        return ""
    if not isinstance(parsed, datetime):
        return day(parsed)
    parsed = parsed.astimezone(UTC) if parsed.tzinfo else parsed
    return f"{parsed.day} {parsed:%b %Y, %H:%M} UTC"


@register.filter
def usd(value) -> str:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        return ""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


@register.filter
def last_day(value) -> str:
    """The last day of a period that ends (exclusively) at `value`."""
    from datetime import timedelta

    parsed = _as_datetime(value)
    if not isinstance(parsed, datetime):
        return day(parsed)
    return day(parsed - timedelta(microseconds=1))

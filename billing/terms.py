"""The upgrade terms: versioned, rendered with the exact numbers shown, hashed
so a consent record proves what the person agreed to."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma

from billing.money import format_money

TERMS_VERSION = "2026-12-02"  # the due-now sentence says what really happens


def terms_text(
    *,
    from_name: str,
    to_name: str,
    monthly_price: Decimal,
    currency: str,
    included_tokens: int,
    amount_due_now: Decimal | None,
    metered_note: str = "",
    new_period: bool = False,
) -> str:
    # Say what really happens: from a free plan the full price is charged and a
    # new monthly period starts today; between paid plans only the difference
    # for the rest of the current period is charged and its end date stays.
    if amount_due_now is None:
        due = "The amount due now is calculated by Stripe when you confirm"
    elif new_period:
        due = (
            f"{format_money(amount_due_now, currency)} (the full monthly price) is charged now; "
            "a new billing period starts today, your included tokens start again from zero, "
            "and the plan renews on this day each month"
        )
    else:
        due = (
            f"{format_money(amount_due_now, currency)} is charged now: the price difference for "
            "the rest of the current billing period, which keeps its end date"
        )
    lines = [
        f"Tollgate plan change terms, version {TERMS_VERSION}.",
        f"You are moving this workspace from {from_name} to {to_name}.",
        f"{to_name} costs {format_money(monthly_price, currency)} per month and includes "
        f"{intcomma(included_tokens)} tokens (input + output) per billing period.",
        f"{due}; the change takes effect only if that payment succeeds.",
        "The plan renews every month until you cancel. Cancelling takes effect at the end "
        "of the period already paid for; unused tokens do not carry over.",
    ]
    if metered_note:
        lines.append(metered_note)
    return "\n".join(lines)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def timestamp(value: datetime) -> int:
    return int(value.timestamp())

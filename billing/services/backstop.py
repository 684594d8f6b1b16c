"""The upstream spend backstop: the month's ledger cost (at the upstream's
prices) against the operator's monthly budget for the org key. A beat task
checks every few minutes from the rollups; at 80 % and 100 % operators get one
email each per month, and at 100 % under the "refuse" policy a flag on the
settings row makes the limits provider refuse new feature calls with
`503 upstream_unavailable` (read through the per-process settings cache: no
SUM per call). Raising the budget or switching to "alert" lifts it at once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import Sum

from billing.models import BackstopPolicy, EconomicsSettings
from billing.services.operator_mail import notify_operators_once
from config import clock
from usage.models import UsageRollup

THRESHOLDS = (80, 100)


def month_bounds(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def month_upstream_cost(day: date) -> Decimal:
    """One SUM over the month's rollup rows (BRIN index on day)."""
    start, end = month_bounds(day)
    total = UsageRollup.objects.filter(day__gte=start, day__lt=end).aggregate(c=Sum("cost"))["c"]
    return total or Decimal(0)


def budget_check() -> str:
    """Returns the state for logs: "off", "ok", "80", "100"."""
    rules = EconomicsSettings.current()
    today = clock.now().date()
    month = f"{today:%Y-%m}"
    budget = rules.upstream_monthly_budget
    if not budget:
        _set_tripped(rules, "")
        return "off"
    spent = month_upstream_cost(today)
    percent = spent * 100 / budget
    reached = [t for t in THRESHOLDS if percent >= t]
    for threshold in reached:
        notify_operators_once(
            kind=f"upstream_budget_{threshold}",
            key=month,
            subject=f"Upstream spend at {threshold}% of the monthly budget ({month})",
            body=(
                f"The ledger's upstream cost for {month} is {spent:.2f} USD, "
                f"{percent:.1f}% of the budget of {budget:.2f} USD.\n"
                + (
                    "Policy: new feature calls are refused (503) until the budget is raised "
                    "or the month ends.\n"
                    if threshold == 100 and rules.backstop_policy == BackstopPolicy.REFUSE
                    else "Policy: alert only; calls continue.\n"
                )
            ),
        )
    tripped = 100 in reached and rules.backstop_policy == BackstopPolicy.REFUSE
    _set_tripped(rules, month if tripped else "")
    return str(reached[-1]) if reached else "ok"


def _set_tripped(rules: EconomicsSettings, month: str) -> None:
    if rules.backstop_tripped_month != month:
        rules.backstop_tripped_month = month
        rules.save(update_fields=["backstop_tripped_month", "updated_at"])

"""Margin per month: revenue (invoice lines mirrored from Stripe) minus upstream
cost (the ledger at the upstream's prices, scaled to the upstream's reported
cost where reconciliation has it), per workspace, tier and feature.

How revenue is attributed (also shown on the page):
- Each invoice line of an open or paid invoice counts at its net amount
  (amount - discount, without tax) in the month its service period starts: the
  plan fee (billed in advance) in the month it pays for, metered overage
  (billed in arrears) in the month the tokens were used. Lines without a period
  count in the month the invoice was issued. Issued credit notes subtract their
  net (total - tax) in the month they were issued.
- A workspace's revenue (the fee that buys its included tokens, and any
  overage) is spread over its features in proportion to the tokens each used
  that month. Revenue without usage shows under "(no usage)".
- The tier is the one named on the month's plan-fee lines (else the
  workspace's current tier; "free" without one).

How cost is scaled: the month's ledger cost is multiplied by
(upstream cost ÷ ledger cost) over the month's reconciled days; without
reconciled days the factor is 1 (the rate card holds the upstream's prices).

Reads: grouped queries over the month's rollup rows (BRIN index on day), its
invoice lines and credit notes, the reconciliation runs, and names/tiers —
never a ledger scan per workspace."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, Sum
from django.db.models.functions import Coalesce, TruncMonth

from accounts.models import Workspace
from billing.models import CreditNote, InvoiceLine, ReconciliationRun, Subscription
from billing.models_invoices import LineKind
from usage.models import UsageRollup

CENT = Decimal("0.01")
NO_USAGE = "(no usage)"
REVENUE_STATUSES = ("paid", "open")


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def _aware(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass
class MarginRow:
    key: str  # workspace name, tier slug or feature slug
    revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    tokens: int = 0
    workspace_id: int | None = None
    tier: str = ""

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"), ROUND_HALF_UP)

    def rounded(self) -> dict:
        return {
            "key": self.key,
            "tier": self.tier,
            "tokens": self.tokens,
            "revenue": money(self.revenue),
            "cost": money(self.cost),
            "margin": money(self.margin),
            "margin_percent": self.margin_percent,
        }


@dataclass
class MarginReport:
    month: date
    cost_scale: Decimal
    reconciled_days: int
    workspaces: list[MarginRow] = field(default_factory=list)
    tiers: list[MarginRow] = field(default_factory=list)
    features: list[MarginRow] = field(default_factory=list)
    total: MarginRow = field(default_factory=lambda: MarginRow("total"))


def _lines_in(start: date, end: date):
    when = Coalesce("period_start", "invoice__created_at")
    return (
        InvoiceLine.objects.filter(invoice__status__in=REVENUE_STATUSES)
        .annotate(month_at=when)
        .filter(month_at__gte=_aware(start), month_at__lt=_aware(end))
        .order_by()
    )


def revenue_by_workspace(start: date, end: date) -> dict[int, Decimal]:
    """Net revenue per workspace: invoice lines minus issued credit notes."""
    revenue: dict[int, Decimal] = defaultdict(Decimal)
    lines = (
        _lines_in(start, end)
        .values("invoice__workspace_id")
        .annotate(net=Sum(F("amount") - F("discount")))
    )
    for row in lines:
        revenue[row["invoice__workspace_id"]] += row["net"] or Decimal(0)
    credits = (
        CreditNote.objects.filter(created_at__gte=_aware(start), created_at__lt=_aware(end))
        .exclude(status="void")
        .order_by()
        .values("workspace_id")
        .annotate(net=Sum(F("total") - F("tax")))
    )
    for row in credits:
        revenue[row["workspace_id"]] -= row["net"] or Decimal(0)
    return dict(revenue)


def tiers_on_lines(start: date, end: date) -> dict[int, str]:
    rows = (
        _lines_in(start, end)
        .filter(kind=LineKind.PLAN_FEE, tier__isnull=False)
        .values_list("invoice__workspace_id", "tier__slug")
    )
    return dict(rows)


def usage_query(start: date, end: date):
    return (
        UsageRollup.objects.filter(day__gte=start, day__lt=end)
        .order_by()
        .values("workspace_id", "feature")
        .annotate(tokens=Sum("total_tokens"), cost=Sum("cost"))
    )


def usage_by_workspace_feature(start: date, end: date) -> dict[int, dict[str, tuple[int, Decimal]]]:
    rows = usage_query(start, end)
    usage: dict[int, dict[str, tuple[int, Decimal]]] = defaultdict(dict)
    for row in rows:
        usage[row["workspace_id"]][row["feature"]] = (row["tokens"] or 0, row["cost"] or Decimal(0))
    return usage


def cost_scale(start: date, end: date) -> tuple[Decimal, int]:
    runs = ReconciliationRun.objects.filter(
        day__gte=start, day__lt=end, upstream_cost__isnull=False, ledger_cost__gt=0
    ).aggregate(upstream=Sum("upstream_cost"), ledger=Sum("ledger_cost"))
    days = ReconciliationRun.objects.filter(
        day__gte=start, day__lt=end, upstream_cost__isnull=False, ledger_cost__gt=0
    ).count()
    if not runs["ledger"]:
        return Decimal(1), 0
    return runs["upstream"] / runs["ledger"], days


def _names_and_tiers(ids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    names = dict(Workspace.objects.filter(pk__in=ids).values_list("pk", "name"))
    tiers = dict(
        Subscription.objects.filter(workspace_id__in=ids, tier__isnull=False).values_list(
            "workspace_id", "tier__slug"
        )
    )
    return names, tiers


def margin_report(*, month: date, free_tier: str = "free") -> MarginReport:
    start, end = month_bounds(month)
    revenue = revenue_by_workspace(start, end)
    usage = usage_by_workspace_feature(start, end)
    scale, days = cost_scale(start, end)
    ids = set(revenue) | set(usage)
    names, tier_of = _names_and_tiers(ids)
    tier_of |= tiers_on_lines(start, end)
    report = MarginReport(month=start, cost_scale=scale, reconciled_days=days)
    tiers: dict[str, MarginRow] = {}
    features: dict[str, MarginRow] = {}
    for workspace_id in ids:
        tier = tier_of.get(workspace_id, free_tier)
        row = MarginRow(names.get(workspace_id, f"#{workspace_id}"), workspace_id=workspace_id)
        row.tier = tier
        row.revenue = revenue.get(workspace_id, Decimal(0))
        by_feature = usage.get(workspace_id, {})
        row.tokens = sum(tokens for tokens, _ in by_feature.values())
        row.cost = sum((cost for _, cost in by_feature.values()), Decimal(0)) * scale
        _spread(row, by_feature, scale, features)
        report.workspaces.append(row)
        _add(tiers.setdefault(tier, MarginRow(tier)), row)
        _add(report.total, row)
    # Lowest margin first (no revenue but cost: the worst); ties by name.
    report.workspaces.sort(key=lambda r: (_sort_percent(r), r.margin, r.key))
    report.tiers = sorted(tiers.values(), key=lambda r: (_sort_percent(r), r.key))
    report.features = sorted(features.values(), key=lambda r: (_sort_percent(r), r.key))
    return report


def _sort_percent(row: MarginRow) -> Decimal:
    percent = row.margin_percent
    if percent is None:
        return Decimal("-Infinity") if row.cost else Decimal("Infinity")
    return percent


def _add(into: MarginRow, row: MarginRow) -> None:
    into.revenue += row.revenue
    into.cost += row.cost
    into.tokens += row.tokens


def _spread(row: MarginRow, by_feature: dict, scale: Decimal, features: dict) -> None:
    """The workspace's revenue over its features, in proportion to tokens used."""
    if not row.tokens:
        target = features.setdefault(NO_USAGE, MarginRow(NO_USAGE))
        target.revenue += row.revenue
        return
    for feature, (tokens, cost) in by_feature.items():
        target = features.setdefault(feature, MarginRow(feature))
        target.revenue += row.revenue * tokens / row.tokens
        target.cost += cost * scale
        target.tokens += tokens


def monthly_totals(*, months: int = 12, until: date) -> list[dict]:
    """Revenue, upstream cost (scaled) and margin for the chart, per month."""
    end = month_bounds(until)[1]
    index = until.year * 12 + until.month - 1 - (months - 1)
    first = date(index // 12, index % 12 + 1, 1)
    costs = dict(
        UsageRollup.objects.filter(day__gte=first, day__lt=end)
        .annotate(month=TruncMonth("day"))
        .order_by()
        .values("month")
        .annotate(cost=Sum("cost"))
        .values_list("month", "cost")
    )
    rows = []
    month = first
    while month < end:
        scale, _ = cost_scale(*month_bounds(month))
        cost = (costs.get(month) or Decimal(0)) * scale
        revenue = sum(revenue_by_workspace(*month_bounds(month)).values(), Decimal(0))
        rows.append(
            {
                "month": month,
                "revenue": money(revenue),
                "cost": money(cost),
                "margin": money(revenue - cost),
            }
        )
        month = month_bounds(month)[1]
    return rows

"""Reads for billing pages and the API — always for one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from accounts.models import Workspace
from billing.limits import subscription_for, workspace_limits
from billing.models import ConsentRecord, CreditNote, Invoice, Subscription, Tier
from usage.limits import WorkspaceLimits


@dataclass(frozen=True)
class PeriodUsage:
    used: int
    reserved: int
    limits: WorkspaceLimits

    @property
    def included(self) -> int:
        return self.limits.included_tokens

    @property
    def percent(self) -> int:
        if not self.included:
            return 100 if self.used else 0
        return min(999, int(self.used * 100 / self.included))

    @property
    def remaining(self) -> int:
        return max(0, self.included - self.used - self.reserved)

    @property
    def overage_tokens(self) -> int:
        return max(0, self.used - self.included)

    @property
    def is_exhausted(self) -> bool:
        return self.limits.overage_policy == "stop" and self.used >= self.included


def used_tokens(workspace: Workspace | int, limits: WorkspaceLimits) -> tuple[int, int]:
    """Tokens used and reserved in the current period: the meter's own counter,
    so the page shows exactly what the quota check sees."""
    try:
        from usage.models import CounterScope, UsageCounter
    except ImportError:  # the meter's counters are not installed yet
        return 0, 0

    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    row = (
        UsageCounter.objects.filter(workspace_id=workspace_id)
        .filter(
            scope=CounterScope.WORKSPACE, scope_id=workspace_id, period_start=limits.period_start
        )
        .values_list("used", "reserved")
        .first()
    )
    return row or (0, 0)


def period_usage(workspace: Workspace, limits: WorkspaceLimits | None = None) -> PeriodUsage:
    limits = limits or workspace_limits(workspace)
    used, reserved = used_tokens(workspace, limits)
    return PeriodUsage(used=used, reserved=reserved, limits=limits)


def public_tiers():
    return Tier.objects.public().select_related("next_tier")


def tier_by_slug(slug: str) -> Tier | None:
    return Tier.objects.public().filter(slug=slug).first() if slug else None


def consent_history(workspace: Workspace):
    return ConsentRecord.objects.for_workspace(workspace).select_related("from_tier", "to_tier")


def invoices(workspace: Workspace):
    return Invoice.objects.for_workspace(workspace)


def invoices_with_details(
    workspace: Workspace,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    status: str | None = None,
):
    """The workspace's invoices with lines, history and credit notes prefetched."""
    rows = invoices(workspace).prefetch_related(
        "lines__tier", "status_history", "credit_notes__lines"
    )
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    if status:
        rows = rows.filter(status=status)
    return rows


def invoice(workspace: Workspace, stripe_invoice_id: str) -> Invoice | None:
    return invoices_with_details(workspace).filter(stripe_invoice_id=stripe_invoice_id).first()


def credit_notes(workspace: Workspace):
    return CreditNote.objects.for_workspace(workspace).select_related("invoice")


def subscription(workspace: Workspace) -> Subscription | None:
    return subscription_for(workspace)


def overage_estimate(usage: PeriodUsage) -> Decimal:
    price = usage.limits.overage_price_per_million
    return (Decimal(usage.overage_tokens) * price / Decimal(1_000_000)).quantize(Decimal("0.01"))

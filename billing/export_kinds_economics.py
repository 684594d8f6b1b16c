"""Operator economics as export jobs (finance-exports' registry, config.exports):
the `margin` kind (back office, CSV/XLSX: per workspace, tier and feature for
the month the period starts in) and the close pack's "margin" and
"reconciliation" sections. Imported by billing.export_kinds."""

from __future__ import annotations

from datetime import date

from billing.models import ReconciliationRun
from billing.selectors_margin import margin_report
from config import clock
from config.exports import ExportContext, Scope, register, register_close_pack_section
from config.tabular import Column, Kind, Sheet

MARGIN_COLUMNS = [
    Column("name", Kind.TEXT, lambda r: r["key"]),
    Column("tier", Kind.TEXT),
    Column("tokens", Kind.INTEGER),
    Column("revenue_usd", Kind.MONEY, lambda r: r["revenue"]),
    Column("upstream_cost_usd", Kind.MONEY, lambda r: r["cost"]),
    Column("margin_usd", Kind.MONEY, lambda r: r["margin"]),
    Column("margin_percent", Kind.DECIMAL),
]


def _month(ctx: ExportContext) -> date:
    at = ctx.start or clock.now()
    return at.date().replace(day=1)


def margin_sheets(ctx: ExportContext) -> list[Sheet]:
    report = margin_report(month=_month(ctx))
    return [
        Sheet("Margin by workspace", MARGIN_COLUMNS, [r.rounded() for r in report.workspaces]),
        Sheet("Margin by tier", MARGIN_COLUMNS, [r.rounded() for r in report.tiers]),
        Sheet("Margin by feature", MARGIN_COLUMNS, [r.rounded() for r in report.features]),
    ]


RECONCILIATION_COLUMNS = [
    Column("day", Kind.DATE),
    Column("status", Kind.TEXT),
    Column("grouped_by", Kind.TEXT),
    Column("our_requests", Kind.INTEGER),
    Column("their_requests", Kind.INTEGER),
    Column("our_tokens", Kind.INTEGER),
    Column("their_tokens", Kind.INTEGER),
    Column("ledger_cost", Kind.DECIMAL),
    Column("upstream_cost", Kind.DECIMAL),
    Column("max_drift_percent", Kind.DECIMAL),
    Column("flagged_events", Kind.INTEGER),
]


def reconciliation_sheets(ctx: ExportContext) -> list[Sheet]:
    runs = ReconciliationRun.objects.order_by("day")
    if ctx.start:
        runs = runs.filter(day__gte=ctx.start.date())
    if ctx.end:
        runs = runs.filter(day__lt=ctx.end.date())
    return [Sheet("Reconciliation", RECONCILIATION_COLUMNS, runs)]


register(
    "margin",
    title="Margin (revenue vs upstream cost)",
    formats=("csv", "xlsx"),
    scope=Scope.BACKOFFICE,
    sheets=margin_sheets,
    description="Per workspace, tier and feature for the month the period starts in.",
)
register_close_pack_section("margin", sheets=margin_sheets)
register_close_pack_section("reconciliation", sheets=reconciliation_sheets)

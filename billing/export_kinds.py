"""Billing's export kinds (discovered by config.exports): the invoice register,
invoice lines, credit notes, payments, usage with money, and the monthly close
pack. Columns are declared once here; config.tabular writes them."""

from __future__ import annotations

from billing import selectors_finance as fin
from billing.close_pack import write_close_pack
from billing.finance_sheets import (
    credit_note_sheets,
    finance_filters,
    line_sheets,
    payment_sheets,
    register_sheets,
    usage_count,
    usage_sheets,
)
from config.exports import ExportContext, Scope, register


def _counter(selector):
    def count(ctx: ExportContext) -> int:
        return selector(ctx.workspace, finance_filters(ctx)).count()

    return count


register(
    "invoices",
    title="Invoice register",
    formats=("csv", "xlsx"),
    scope=Scope.BOTH,
    sheets=register_sheets,
    count=_counter(fin.invoices),
)
register(
    "invoice_lines",
    title="Invoice lines",
    formats=("csv", "xlsx"),
    scope=Scope.BOTH,
    sheets=line_sheets,
    count=_counter(fin.invoice_lines),
)
register(
    "credit_notes",
    title="Credit notes",
    formats=("csv", "xlsx"),
    scope=Scope.BOTH,
    sheets=credit_note_sheets,
    count=_counter(fin.credit_notes),
)
register(
    "payments",
    title="Payments",
    formats=("csv", "xlsx"),
    scope=Scope.BACKOFFICE,
    sheets=payment_sheets,
    count=_counter(fin.payments),
)
register(
    "usage",
    title="Usage with money",
    formats=("csv", "xlsx"),
    scope=Scope.WORKSPACE,
    sheets=usage_sheets,
    count=usage_count,
    description="Every request with its tokens and its value at the workspace's tier price.",
)
register(
    "close_pack",
    title="Monthly close pack",
    formats=("zip",),
    scope=Scope.BACKOFFICE,
    writer=write_close_pack,
    description="Register, lines, credit notes, payments and a summary per currency.",
)

from billing import export_kinds_economics  # noqa: E402,F401  (margin + close pack sections)

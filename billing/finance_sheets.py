"""The finance tables: each export's columns and the sheets they fill, shared by
the export kinds (billing/export_kinds.py) and the monthly close pack."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from billing import selectors_finance as fin
from config.exports import ExportContext
from config.tabular import Column, Kind, Sheet

CHUNK = 2_000
TEXT, INT, MONEY, DEC, DAY, BOOL = (
    Kind.TEXT,
    Kind.INTEGER,
    Kind.MONEY,
    Kind.DECIMAL,
    Kind.DATE,
    Kind.BOOLEAN,
)


def finance_filters(ctx: ExportContext) -> fin.FinanceFilters:
    # Customers' exports of their own workspace take the period only.
    extra = ctx.filters if ctx.workspace is None else {}
    return fin.FinanceFilters.of(ctx.start, ctx.end, extra)


# API.md's path (a contract). Not reverse(): that would load every URLconf and
# view module into the export worker (7 s and ~60 MB on first call).
PDF_PATH = "/api/v1/invoices/{}/pdf"


def pdf_link(invoice: Any) -> str:
    return settings.SITE_URL.rstrip("/") + PDF_PATH.format(invoice.stripe_invoice_id)


# --- the invoice register -----------------------------------------------------------

REGISTER_COLUMNS = [
    Column("number"),
    Column("issue_date", DAY, lambda i: i.issued_at),
    Column("service_period_start", DAY, lambda i: i.service_period_start or i.period_start),
    Column("service_period_end", DAY, lambda i: i.service_period_end or i.period_end),
    Column("due_date", DAY),
    Column("status"),
    Column("paid_date", DAY, lambda i: i.paid_at),
    Column("payment_method", TEXT, lambda i: i.payment_method_summary),
    Column("workspace", TEXT, lambda i: i.workspace.name),
    Column("workspace_id", INT),
    Column("customer_legal_name"),
    Column("country", TEXT, lambda i: i.customer_country),
    Column("tax_id", TEXT, lambda i: i.customer_tax_id),
    Column("currency", TEXT, lambda i: i.currency.upper()),
    Column("subtotal", MONEY),
    Column("discount", MONEY),
    Column("net", MONEY),
    Column("tax", MONEY),
    Column("gross", MONEY, lambda i: i.total),
    Column("credited", MONEY, lambda i: i.credited_total),
    Column("paid", MONEY, lambda i: i.amount_paid),
    Column("due", MONEY, lambda i: i.amount_due),
    Column("outstanding", MONEY, lambda i: i.amount_remaining),
    Column("billing_reason"),
    Column("stripe_invoice_id"),
    Column("stripe_customer_id"),
    Column("stripe_subscription_id"),
    Column("stripe_payment_intent_id"),
    Column("stripe_charge_id"),
    Column("pdf_link", TEXT, pdf_link),
]


def register_sheets(ctx: ExportContext) -> list[Sheet]:
    rows = fin.invoices(ctx.workspace, finance_filters(ctx)).iterator(chunk_size=CHUNK)
    return [Sheet("Invoices", REGISTER_COLUMNS, rows)]


# --- lines ----------------------------------------------------------------------

LINE_COLUMNS = [
    Column("invoice_number", TEXT, lambda li: li.invoice.number),
    Column("issue_date", DAY, lambda li: li.issued_at),
    Column("workspace", TEXT, lambda li: li.invoice.workspace.name),
    Column("currency", TEXT, lambda li: li.currency.upper()),
    Column("position", INT),
    Column("kind"),
    Column("description"),
    Column("period_start", DAY),
    Column("period_end", DAY),
    Column("quantity", DEC),
    Column("unit_amount", DEC),
    Column("amount", MONEY),
    Column("discount", MONEY),
    Column("net", MONEY, lambda li: li.amount - li.discount),
    Column("tax", MONEY),
    Column("gross", MONEY, fin.line_gross),
    Column("tax_rate", DEC),
    Column("proration", BOOL),
    Column("tier", TEXT, lambda li: li.tier.slug if li.tier else ""),
    Column("stripe_invoice_id", TEXT, lambda li: li.invoice.stripe_invoice_id),
    Column("stripe_line_id"),
    Column("stripe_price_id"),
]


def line_sheets(ctx: ExportContext) -> list[Sheet]:
    rows = fin.invoice_lines(ctx.workspace, finance_filters(ctx)).iterator(chunk_size=CHUNK)
    return [Sheet("Invoice lines", LINE_COLUMNS, rows)]


# --- credit notes ---------------------------------------------------------------

CREDIT_NOTE_COLUMNS = [
    Column("number"),
    Column("issue_date", DAY, lambda c: c.created_at),
    Column("invoice_number", TEXT, lambda c: c.invoice.number),
    Column("workspace", TEXT, lambda c: c.workspace.name),
    Column("customer_legal_name", TEXT, lambda c: c.invoice.customer_legal_name),
    Column("country", TEXT, lambda c: c.invoice.customer_country),
    Column("currency", TEXT, lambda c: c.currency.upper()),
    Column("status"),
    Column("type"),
    Column("reason"),
    Column("memo"),
    Column("subtotal", MONEY),
    Column("discount", MONEY),
    Column("tax", MONEY),
    Column("total", MONEY),
    Column("refunded", MONEY, lambda c: c.refund_amount),
    Column("credited_to_balance", MONEY, lambda c: c.credit_amount),
    Column("out_of_band", MONEY, lambda c: c.out_of_band_amount),
    Column("voided_date", DAY, lambda c: c.voided_at),
    Column("stripe_credit_note_id"),
    Column("stripe_invoice_id", TEXT, lambda c: c.invoice.stripe_invoice_id),
    Column("stripe_refund_id"),
]


def credit_note_sheets(ctx: ExportContext) -> list[Sheet]:
    rows = fin.credit_notes(ctx.workspace, finance_filters(ctx)).iterator(chunk_size=CHUNK)
    return [Sheet("Credit notes", CREDIT_NOTE_COLUMNS, rows)]


# --- payments ---------------------------------------------------------------------

PAYMENT_COLUMNS = [
    Column("paid_date", DAY, lambda i: i.received_at),
    Column("invoice_number", TEXT, lambda i: i.number),
    Column("workspace", TEXT, lambda i: i.workspace.name),
    Column("customer_legal_name"),
    Column("currency", TEXT, lambda i: i.currency.upper()),
    Column("amount_paid", MONEY),
    Column("payment_method", TEXT, lambda i: i.payment_method_summary),
    Column("attempts", INT, lambda i: i.attempt_count),
    Column("stripe_payment_intent_id"),
    Column("stripe_charge_id"),
    Column("stripe_invoice_id"),
]


def payment_sheets(ctx: ExportContext) -> list[Sheet]:
    rows = fin.payments(ctx.workspace, finance_filters(ctx)).iterator(chunk_size=CHUNK)
    return [Sheet("Payments", PAYMENT_COLUMNS, rows)]


# --- usage with money ---------------------------------------------------------------


def usage_sheets(ctx: ExportContext) -> list[Sheet]:
    from billing.usage_pricing import USAGE_COLUMNS, priced_usage

    return [Sheet("Usage", USAGE_COLUMNS, priced_usage(ctx.workspace, ctx.start, ctx.end))]


def usage_count(ctx: ExportContext) -> int:
    from billing.usage_pricing import usage_events

    return usage_events(ctx.workspace, ctx.start, ctx.end).count()

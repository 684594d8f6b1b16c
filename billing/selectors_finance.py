"""Reads for finance: the invoice register, lines, credit notes, payments and
their totals — for one workspace (a customer's finance member) or, with
`workspace=None`, across all workspaces (the operator's back office only; the
callers check who asks). Every list has a deterministic order, so exports of a
closed period are reproducible."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth

from accounts.models import Workspace
from billing.models_invoices import CreditNote, Invoice, InvoiceLine, InvoiceStatus

ZERO = Decimal("0.00")
FILTER_KEYS = ("status", "tier", "country", "currency")
LINE_FIELDS = [
    f.name for f in InvoiceLine._meta.concrete_fields if f.name not in ("invoice", "tier")
] + ["invoice", "tier"]


@dataclass(frozen=True)
class FinanceFilters:
    """The period is half-open [start, end) in UTC on the issue date."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    status: str = ""
    tier: str = ""
    country: str = ""
    currency: str = ""

    @classmethod
    def of(
        cls,
        start: dt.datetime | None,
        end: dt.datetime | None,
        filters: Mapping[str, str] | None = None,
    ) -> FinanceFilters:
        values = {k: str((filters or {}).get(k) or "").strip() for k in FILTER_KEYS}
        values["country"] = values["country"].upper()
        values["currency"] = values["currency"].lower()
        return cls(start=start, end=end, **values)


def _scoped(model, workspace: Workspace | None) -> QuerySet:
    if workspace is None:
        return model.objects.all()  # back office: all workspaces (callers check the role)
    return model.objects.for_workspace(workspace)


def invoices(workspace: Workspace | None, f: FinanceFilters) -> QuerySet[Invoice]:
    """Issued invoices (drafts are not documents yet), by issue date."""
    qs = (
        _scoped(Invoice, workspace)
        .exclude(status=InvoiceStatus.DRAFT)
        .annotate(issued_at=Coalesce("finalized_at", "created_at"))
        .select_related("workspace")
    )
    qs = _filtered(qs, f, when="issued_at")
    return qs.order_by("issued_at", "number", "pk")


def invoice_lines(workspace: Workspace | None, f: FinanceFilters) -> QuerySet[InvoiceLine]:
    inv = invoices(workspace, f).values("pk")
    return (
        InvoiceLine.objects.filter(invoice__in=inv)
        .annotate(issued_at=Coalesce("invoice__finalized_at", "invoice__created_at"))
        .select_related("invoice", "invoice__workspace", "tier")
        # Only what a line row shows: the invoice row is wide (addresses, URLs,
        # ids), and 500,000 lines would carry it 500,000 times.
        .only(
            *LINE_FIELDS,
            "invoice__number",
            "invoice__stripe_invoice_id",
            "invoice__currency",
            "invoice__workspace__name",
            "tier__slug",
        )
        .order_by("issued_at", "invoice__number", "invoice_id", "position", "pk")
    )


def credit_notes(workspace: Workspace | None, f: FinanceFilters) -> QuerySet[CreditNote]:
    """Credit notes by their own issue date; status/tier/country filter on the invoice."""
    qs = _scoped(CreditNote, workspace).select_related("invoice", "workspace")
    qs = _filtered(qs, f, when="created_at", invoice="invoice")
    return qs.order_by("created_at", "number", "pk")


def payments(workspace: Workspace | None, f: FinanceFilters) -> QuerySet[Invoice]:
    """Money received: invoices with a payment, by payment date (refunds are
    the credit notes' `refund_amount`)."""
    qs = _scoped(Invoice, workspace).filter(amount_paid__gt=0).select_related("workspace")
    qs = qs.annotate(received_at=Coalesce("paid_at", "finalized_at", "created_at"))
    qs = _filtered(qs, f, when="received_at", status=False)
    return qs.order_by("received_at", "number", "pk")


def _filtered(
    qs: QuerySet, f: FinanceFilters, *, when: str, invoice: str = "", status: bool = True
) -> QuerySet:
    """The console's filters: the period on `when`; status, country and tier on
    the invoice (`invoice` is the path to it, "" for an invoice itself)."""
    on = f"{invoice}__" if invoice else ""
    if f.start:
        qs = qs.filter(**{f"{when}__gte": f.start})
    if f.end:
        qs = qs.filter(**{f"{when}__lt": f.end})
    if status and f.status:
        qs = qs.filter(**{f"{on}status": f.status})
    if f.country:
        qs = qs.filter(**{f"{on}customer_country": f.country})
    if f.currency:
        qs = qs.filter(currency=f.currency)
    if f.tier:
        lines = InvoiceLine.objects.filter(
            invoice=OuterRef(f"{invoice}_id" if invoice else "pk"), tier__slug=f.tier
        )
        qs = qs.filter(Exists(lines))
    return qs


def _money(name: str):
    return Coalesce(Sum(name), Value(ZERO))


def totals_by_period(workspace: Workspace | None, f: FinanceFilters) -> list[dict]:
    """Per month of issue and currency: count, net, discount, tax, gross,
    credited, paid, outstanding (what is still owed: amount_remaining)."""
    rows = (
        invoices(workspace, f)
        .annotate(month=TruncMonth("issued_at", tzinfo=dt.UTC))
        .order_by()
        .values("month", "currency")
        .annotate(
            invoices=Count("pk"),
            subtotal=_money("subtotal"),
            discount=_money("discount"),
            net=_money("net"),
            tax=_money("tax"),
            gross=_money("total"),
            credited=_money("credited_total"),
            paid=_money("amount_paid"),
            outstanding=_money("amount_remaining"),
        )
        .order_by("month", "currency")
    )
    return list(rows)


def totals_by_currency(workspace: Workspace | None, f: FinanceFilters) -> list[dict]:
    """The summary per currency for a period (the close pack's summary sheets)."""
    rows = list(
        invoices(workspace, f)
        .order_by()
        .values("currency")
        .annotate(
            invoices=Count("pk"),
            subtotal=_money("subtotal"),
            discount=_money("discount"),
            net=_money("net"),
            tax=_money("tax"),
            gross=_money("total"),
            credited=_money("credited_total"),
            paid=_money("amount_paid"),
            outstanding=_money("amount_remaining"),
        )
        .order_by("currency")
    )
    notes = {
        r["currency"]: r
        for r in credit_notes(workspace, f)
        .order_by()
        .values("currency")
        .annotate(
            credit_notes=Count("pk"),
            credit_notes_total=_money("total"),
            refunded=_money("refund_amount"),
        )
    }
    for row in rows:
        extra = notes.pop(row["currency"], {})
        row["credit_notes"] = extra.get("credit_notes", 0)
        row["credit_notes_total"] = extra.get("credit_notes_total", ZERO)
        row["refunded"] = extra.get("refunded", ZERO)
    for currency, extra in sorted(notes.items()):  # notes in a currency with no invoices
        rows.append(
            {
                "currency": currency,
                "invoices": 0,
                **{k: ZERO for k in ("subtotal", "discount", "net", "tax", "gross")},
                **{k: ZERO for k in ("credited", "paid", "outstanding")},
                "credit_notes": extra["credit_notes"],
                "credit_notes_total": extra["credit_notes_total"],
                "refunded": extra["refunded"],
            }
        )
    return rows


def filter_choices() -> dict[str, list[str]]:
    """Values for the console's filter menus."""
    from billing.models import Tier

    return {
        "statuses": [s for s, _ in InvoiceStatus.choices if s != InvoiceStatus.DRAFT],
        "tiers": list(Tier.objects.order_by("sort_order", "pk").values_list("slug", flat=True)),
        "countries": sorted(
            c
            for c in Invoice.objects.exclude(customer_country="")
            .values_list("customer_country", flat=True)
            .distinct()
        ),
        "currencies": sorted(Invoice.objects.values_list("currency", flat=True).distinct()),
    }


def line_gross(line: InvoiceLine) -> Decimal:
    return line.amount - line.discount + line.tax

"""The invoice mirror's one writer. Stripe is the document of record: every
function here works from a freshly retrieved Stripe object and upserts the
mirror (invoice + lines + status history, credit notes + lines), returning what
changed so the nightly re-sync can report its repairs. Nothing else writes an
issued invoice (`StripeMirror.save` refuses)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any

import stripe
from django.db import transaction

from accounts.models import Workspace
from billing import stripe_api
from billing.enqueue import enqueue_on_commit
from billing.models import Subscription, Tier
from billing.models_invoices import (
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceResync,
    InvoiceStatus,
    InvoiceStatusChange,
    LineKind,
)
from billing.money import from_minor_units, from_minor_units_decimal
from billing.stripe_api import field, from_timestamp, object_id
from config import clock

logger = logging.getLogger(__name__)

# Fields compared to report drift (the rest are derived or bookkeeping).
_COMPARED = (
    "number",
    "status",
    "subtotal",
    "discount",
    "net",
    "tax",
    "total",
    "amount_paid",
    "amount_due",
    "amount_remaining",
    "credited_total",
    "paid_at",
    "voided_at",
    "customer_legal_name",
    "customer_tax_id",
    "payment_method_summary",
)


@dataclass
class SyncResult:
    invoice: Invoice | None
    created: bool = False
    changes: dict[str, list[str]] = dc_field(default_factory=dict)


def _money(obj: Any, name: str, currency: str) -> Decimal:
    return from_minor_units(field(obj, name, 0) or 0, currency)


def _sum_money(items: Any, currency: str) -> Decimal:
    return from_minor_units(sum(field(i, "amount", 0) for i in items or []), currency)


# --- workspace ---------------------------------------------------------------------------


def _workspace_for(invoice: Any) -> Workspace | None:
    customer_id = object_id(field(invoice, "customer"))
    row = Subscription.objects.filter(stripe_customer_id=customer_id).select_related("workspace")
    if (sub := row.first()) is not None:
        return sub.workspace
    details = field(field(invoice, "parent", {}), "subscription_details", {})
    for meta in (field(invoice, "metadata", {}), field(details, "metadata", {})):
        workspace_id = field(meta, "workspace_id")
        if workspace_id and str(workspace_id).isdigit():
            return Workspace.objects.filter(pk=int(workspace_id)).first()
    return None


def invoice_subscription_id(invoice: Any) -> str:
    # API ≥ 2025-03-31: invoice.parent.subscription_details.subscription.
    details = field(field(invoice, "parent", {}), "subscription_details", {})
    return object_id(field(details, "subscription")) or object_id(field(invoice, "subscription"))


# --- lines --------------------------------------------------------------------------------

_PRICE_USAGE: dict[str, str] = {}  # price id -> usage_type (a price's recurring never changes)


def _price_usage_type(price_id: str) -> str:
    if not price_id:
        return ""
    if price_id not in _PRICE_USAGE:
        try:
            price = stripe_api.client().v1.prices.retrieve(price_id)
        except stripe.StripeError:
            return ""
        _PRICE_USAGE[price_id] = field(field(price, "recurring", {}), "usage_type", "")
    return _PRICE_USAGE[price_id]


def _line_kind(line: Any, price_id: str, tier: Tier | None) -> str:
    details = field(field(line, "parent", {}), "subscription_item_details", {})
    if field(details, "proration", False) or field(line, "proration", False):
        return LineKind.PRORATION
    if tier is not None and price_id and price_id == tier.stripe_overage_price_id:
        return LineKind.METERED_OVERAGE
    if tier is not None and price_id and price_id == tier.stripe_price_id:
        return LineKind.PLAN_FEE
    usage = _price_usage_type(price_id)
    if usage == "metered":
        return LineKind.METERED_OVERAGE
    if usage == "licensed":
        return LineKind.PLAN_FEE
    return LineKind.OTHER


def _line_values(line: Any, currency: str, position: int) -> dict:
    pricing = field(line, "pricing", {})
    price_details = field(pricing, "price_details", {})
    price_id = object_id(field(price_details, "price"))
    product_id = object_id(field(price_details, "product"))
    tier = Tier.objects.filter(stripe_product_id=product_id).first() if product_id else None
    unit = field(pricing, "unit_amount_decimal")
    taxes = field(line, "taxes", []) or []
    taxable = sum(field(t, "taxable_amount", 0) for t in taxes)
    tax_minor = sum(field(t, "amount", 0) for t in taxes)
    period = field(line, "period", {})
    details = field(field(line, "parent", {}), "subscription_item_details", {})
    return {
        "position": position,
        "kind": _line_kind(line, price_id, tier),
        "description": (field(line, "description", "") or "")[:500],
        "period_start": from_timestamp(field(period, "start")),
        "period_end": from_timestamp(field(period, "end")),
        "quantity": Decimal(field(line, "quantity", 0) or 0),
        "currency": currency,
        "unit_amount": from_minor_units_decimal(unit, currency) if unit is not None else None,
        "amount": _money(line, "amount", currency),
        "discount": _sum_money(field(line, "discount_amounts", []), currency),
        "tax": from_minor_units(tax_minor, currency),
        "tax_rate": (
            (Decimal(tax_minor) * 100 / Decimal(taxable)).quantize(Decimal("0.0001"))
            if taxable
            else None
        ),
        "proration": bool(field(details, "proration", False)),
        "tier": tier,
        "stripe_price_id": price_id,
        "stripe_product_id": product_id,
        "stripe_subscription_item_id": object_id(field(details, "subscription_item")),
    }


def _all_lines(invoice: Any) -> list:
    lines = field(invoice, "lines", {})
    data = list(field(lines, "data", []) or [])
    if field(lines, "has_more", False):  # Stripe embeds the first lines only
        data = list(
            stripe_api.client()
            .v1.invoices.line_items.list(invoice.id, {"limit": 100})
            .auto_paging_iter()
        )
    return data


def _sync_lines(row: Invoice, lines: list) -> None:
    seen = []
    for position, line in enumerate(lines):
        values = _line_values(line, row.currency, position)
        InvoiceLine.objects.update_or_create(
            invoice=row, stripe_line_id=field(line, "id"), defaults=values
        )
        seen.append(field(line, "id"))
    InvoiceLine.objects.filter(invoice=row).exclude(stripe_line_id__in=seen).delete()


# --- payment -----------------------------------------------------------------------------------


def _payment(invoice: Any, current: Invoice | None) -> dict:
    """The paid PaymentIntent, its charge and a card summary ("visa •••• 4242")."""
    intent_id = ""
    for payment in field(field(invoice, "payments", {}), "data", []) or []:
        if field(payment, "status") == "paid":
            intent_id = object_id(field(field(payment, "payment", {}), "payment_intent"))
    if not intent_id:
        return {}
    if current is not None and current.stripe_payment_intent_id == intent_id:
        return {}  # already mirrored: a PaymentIntent's charge doesn't change
    intent = stripe_api.client().v1.payment_intents.retrieve(
        intent_id, {"expand": ["latest_charge"]}
    )
    charge = field(intent, "latest_charge")
    details = field(charge, "payment_method_details", {})
    card = field(details, "card", {})
    kind = field(details, "type", "")
    summary = f"{field(card, 'brand', '')} •••• {field(card, 'last4', '')}" if card else kind
    return {
        "stripe_payment_intent_id": intent_id,
        "stripe_charge_id": object_id(charge),
        "payment_method_summary": summary.strip()[:100],
    }


# --- invoices ------------------------------------------------------------------------------------


def _invoice_values(invoice: Any, workspace: Workspace, lines: list) -> dict:
    currency = field(invoice, "currency", "usd")
    subtotal = _money(invoice, "subtotal", currency)
    discount = _sum_money(field(invoice, "total_discount_amounts", []), currency)
    if field(invoice, "total_excluding_tax") is not None:
        net = _money(invoice, "total_excluding_tax", currency)
    else:
        net = subtotal - discount
    total = _money(invoice, "total", currency)
    transitions = field(invoice, "status_transitions", {})
    address = field(invoice, "customer_address")
    tax_ids = field(invoice, "customer_tax_ids", []) or []
    periods = [field(ln, "period", {}) for ln in lines]
    starts = [field(p, "start") for p in periods if field(p, "start")]
    ends = [field(p, "end") for p in periods if field(p, "end")]
    return {
        "workspace": workspace,
        "stripe_customer_id": object_id(field(invoice, "customer")),
        "stripe_subscription_id": invoice_subscription_id(invoice),
        "number": field(invoice, "number", "") or "",
        "status": field(invoice, "status", ""),
        "billing_reason": field(invoice, "billing_reason", "") or "",
        "collection_method": field(invoice, "collection_method", "") or "",
        "customer_legal_name": (field(invoice, "customer_name", "") or "")[:200],
        "customer_email": field(invoice, "customer_email", "") or "",
        "customer_address": _plain(address),
        "customer_country": (field(address, "country", "") or "").upper()[:2],
        "customer_tax_id": field(tax_ids[0], "value", "") if tax_ids else "",
        "customer_tax_id_type": field(tax_ids[0], "type", "") if tax_ids else "",
        "currency": currency,
        "subtotal": subtotal,
        "discount": discount,
        "net": net,
        "tax": _sum_money(field(invoice, "total_taxes", []), currency),
        "total": total,
        "amount_paid": _money(invoice, "amount_paid", currency),
        "amount_due": _money(invoice, "amount_due", currency),
        "amount_remaining": _money(invoice, "amount_remaining", currency),
        "credited_total": from_minor_units(
            (field(invoice, "pre_payment_credit_notes_amount", 0) or 0)
            + (field(invoice, "post_payment_credit_notes_amount", 0) or 0),
            currency,
        ),
        "period_start": from_timestamp(field(invoice, "period_start")),
        "period_end": from_timestamp(field(invoice, "period_end")),
        "service_period_start": from_timestamp(min(starts)) if starts else None,
        "service_period_end": from_timestamp(max(ends)) if ends else None,
        "created_at": from_timestamp(field(invoice, "created")) or clock.now(),
        "finalized_at": from_timestamp(field(transitions, "finalized_at")),
        "due_date": from_timestamp(field(invoice, "due_date")),
        "paid_at": from_timestamp(field(transitions, "paid_at")),
        "voided_at": from_timestamp(field(transitions, "voided_at")),
        "marked_uncollectible_at": from_timestamp(field(transitions, "marked_uncollectible_at")),
        "attempt_count": field(invoice, "attempt_count", 0) or 0,
        "hosted_invoice_url": field(invoice, "hosted_invoice_url", "") or "",
        "invoice_pdf": field(invoice, "invoice_pdf", "") or "",
    }


def _plain(value: Any) -> dict:
    """A StripeObject (or None) as a plain JSON dict."""
    if not value:
        return {}
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else dict(value)


def _record_history(row: Invoice, source: str) -> None:
    steps = [
        (InvoiceStatus.DRAFT, row.created_at),
        (InvoiceStatus.OPEN, row.finalized_at),
        (InvoiceStatus.PAID, row.paid_at),
        (InvoiceStatus.VOID, row.voided_at),
        (InvoiceStatus.UNCOLLECTIBLE, row.marked_uncollectible_at),
    ]
    seen: dict[str, dt.datetime] = {status: at for status, at in steps if at is not None}
    seen.setdefault(row.status, clock.now())
    for status, at in seen.items():
        InvoiceStatusChange.objects.get_or_create(
            invoice=row, status=status, defaults={"at": at, "source": source}
        )


def _diff(row: Invoice | None, values: dict) -> dict[str, list[str]]:
    if row is None:
        return {}
    changes = {}
    for name in _COMPARED:
        if name in values and getattr(row, name) != values[name]:
            changes[name] = [str(getattr(row, name)), str(values[name])]
    return changes


def invoice_sync(*, invoice: Any, source: str = "webhook") -> SyncResult:
    """Upsert the mirror of one freshly retrieved Stripe invoice (with its lines)."""
    workspace = _workspace_for(invoice)
    if workspace is None:
        logger.warning("invoice %s: no workspace for its customer; not mirrored", invoice.id)
        return SyncResult(invoice=None)
    lines = _all_lines(invoice)
    with transaction.atomic():
        row = Invoice.objects.select_for_update().filter(stripe_invoice_id=invoice.id).first()
        values = _invoice_values(invoice, workspace, lines)
        values |= _payment(invoice, row)
        changes = _diff(row, values)
        created = row is None
        row = row or Invoice(stripe_invoice_id=invoice.id)
        for name, value in values.items():
            setattr(row, name, value)
        row.synced_at = clock.now()
        row.save(from_stripe=True)
        _sync_lines(row, lines)
        _record_history(row, source)
        if row.finalized_at and not row.pdf_sha256:
            enqueue_on_commit("archive_invoice_pdf", row.pk)  # idempotent: archived once
    return SyncResult(invoice=row, created=created, changes=changes)


def invoice_sync_by_id(*, stripe_invoice_id: str, source: str = "webhook") -> SyncResult:
    try:
        invoice = stripe_api.client().v1.invoices.retrieve(
            stripe_invoice_id, {"expand": ["payments"]}
        )
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:  # a deleted draft (`invoice.deleted`): drop its mirror
            _forget_draft(stripe_invoice_id)
            return SyncResult(invoice=None)
        raise
    return invoice_sync(invoice=invoice, source=source)


def _forget_draft(stripe_invoice_id: str) -> None:
    """Only a draft can be deleted at Stripe; an issued invoice is never forgotten."""
    draft = Invoice.objects.filter(
        stripe_invoice_id=stripe_invoice_id, status=InvoiceStatus.DRAFT, number=""
    )
    for row in draft:
        row.lines.all().delete()
        row.status_history.all().delete()
        Invoice.objects.filter(pk=row.pk).delete()


# --- credit notes ----------------------------------------------------------------------


def _credit_line_values(line: Any, currency: str, invoice_row: Invoice) -> dict:
    unit = field(line, "unit_amount_decimal")
    source_line = object_id(field(line, "invoice_line_item"))
    return {
        "invoice_line": invoice_row.lines.filter(stripe_line_id=source_line).first()
        if source_line
        else None,
        "type": field(line, "type", "") or "",
        "description": (field(line, "description", "") or "")[:500],
        "quantity": Decimal(field(line, "quantity", 0) or 0),
        "currency": currency,
        "unit_amount": from_minor_units_decimal(unit, currency) if unit is not None else None,
        "amount": _money(line, "amount", currency),
        "tax": _sum_money(field(line, "taxes", []), currency),
    }


def credit_note_sync(*, credit_note: Any, source: str = "webhook") -> CreditNote | None:
    """Upsert one credit note (its invoice is synced first when it isn't mirrored)."""
    invoice_id = object_id(field(credit_note, "invoice"))
    invoice_row = Invoice.objects.filter(stripe_invoice_id=invoice_id).first()
    if invoice_row is None:
        invoice_row = invoice_sync_by_id(stripe_invoice_id=invoice_id, source=source).invoice
        if invoice_row is None:
            return None
    currency = field(credit_note, "currency", invoice_row.currency)
    refunds = field(credit_note, "refunds", []) or []
    values = {
        "workspace": invoice_row.workspace,
        "invoice": invoice_row,
        "number": field(credit_note, "number", "") or "",
        "status": field(credit_note, "status", ""),
        "type": field(credit_note, "type", "") or "",
        "reason": field(credit_note, "reason", "") or "",
        "memo": field(credit_note, "memo", "") or "",
        "currency": currency,
        "subtotal": _money(credit_note, "subtotal", currency),
        "discount": _money(credit_note, "discount_amount", currency),
        "tax": _sum_money(field(credit_note, "total_taxes", []), currency),
        "total": _money(credit_note, "total", currency),
        "refund_amount": from_minor_units(
            sum(field(r, "amount_refunded", 0) for r in refunds), currency
        ),
        "credit_amount": from_minor_units(
            max(
                0,
                (field(credit_note, "post_payment_amount", 0) or 0)
                - sum(field(r, "amount_refunded", 0) for r in refunds)
                - (field(credit_note, "out_of_band_amount", 0) or 0),
            ),
            currency,
        ),
        "out_of_band_amount": _money(credit_note, "out_of_band_amount", currency),
        "stripe_refund_id": object_id(field(refunds[0], "refund")) if refunds else "",
        "pdf_url": field(credit_note, "pdf", "") or "",
        "created_at": from_timestamp(field(credit_note, "created")) or clock.now(),
        "voided_at": from_timestamp(field(credit_note, "voided_at")),
    }
    with transaction.atomic():
        row = (
            CreditNote.objects.select_for_update()
            .filter(stripe_credit_note_id=credit_note.id)
            .first()
        ) or CreditNote(stripe_credit_note_id=credit_note.id)
        for name, value in values.items():
            setattr(row, name, value)
        row.synced_at = clock.now()
        row.save(from_stripe=True)
        seen = []
        for line in field(field(credit_note, "lines", {}), "data", []) or []:
            CreditNoteLine.objects.update_or_create(
                credit_note=row,
                stripe_line_id=field(line, "id"),
                defaults=_credit_line_values(line, currency, invoice_row),
            )
            seen.append(field(line, "id"))
        CreditNoteLine.objects.filter(credit_note=row).exclude(stripe_line_id__in=seen).delete()
    return row


def credit_note_sync_by_id(*, stripe_credit_note_id: str, source: str = "webhook"):
    note = stripe_api.client().v1.credit_notes.retrieve(stripe_credit_note_id)
    row = credit_note_sync(credit_note=note, source=source)
    if row is not None:  # the credit changes the invoice's amounts too
        invoice_sync_by_id(stripe_invoice_id=row.invoice.stripe_invoice_id, source=source)
    return row


def charge_refunded_sync(*, stripe_charge_id: str) -> Invoice | None:
    """A refund on an invoice's charge: re-fetch the invoice and its credit notes."""
    charge = stripe_api.client().v1.charges.retrieve(stripe_charge_id)
    intent_id = object_id(field(charge, "payment_intent"))
    row = (
        Invoice.objects.filter(stripe_charge_id=stripe_charge_id).first()
        or Invoice.objects.filter(stripe_payment_intent_id=intent_id or "-").first()
    )
    if row is None:
        return None
    for note in (
        stripe_api.client()
        .v1.credit_notes.list({"invoice": row.stripe_invoice_id, "limit": 100})
        .auto_paging_iter()
    ):
        credit_note_sync(credit_note=note)
    return invoice_sync_by_id(stripe_invoice_id=row.stripe_invoice_id).invoice


# --- the nightly re-sync ---------------------------------------------------------------


def invoices_resync(*, since: dt.datetime | None = None) -> InvoiceResync:
    """Re-fetch every invoice and credit note (optionally created since `since`),
    repair the mirror and record what differed (admin: Invoice re-syncs)."""
    run = InvoiceResync.objects.create()
    client = stripe_api.client()
    params: dict[str, Any] = {"limit": 100, "expand": ["data.payments"]}
    if since is not None:
        params["created"] = {"gte": int(since.timestamp())}
    repairs: list[dict] = []
    try:
        for invoice in client.v1.invoices.list(params).auto_paging_iter():
            if field(invoice, "status") == "draft" and not field(invoice, "number"):
                continue  # drafts change until finalized; the webhook brings them
            result = invoice_sync(invoice=invoice, source="resync")
            run.invoices_checked += 1
            if result.invoice is not None and (result.created or result.changes):
                repairs.append(_repair("invoice", invoice.id, result))
        note_params = {k: v for k, v in params.items() if k != "expand"}
        for note in client.v1.credit_notes.list(note_params).auto_paging_iter():
            before = CreditNote.objects.filter(stripe_credit_note_id=note.id).first()
            row = credit_note_sync(credit_note=note, source="resync")
            run.credit_notes_checked += 1
            if row is not None and (before is None or before.status != row.status):
                repairs.append({"object": "credit_note", "id": note.id, "created": before is None})
    except stripe.StripeError as exc:
        run.error = f"{type(exc).__name__}: {exc.user_message or 'Stripe request failed'}"
    run.repairs = repairs
    run.repaired = len(repairs)
    run.finished_at = clock.now()
    run.save()
    log = logger.warning if repairs else logger.info
    log(
        "invoice re-sync: %s invoices, %s credit notes checked, %s repaired%s",
        run.invoices_checked,
        run.credit_notes_checked,
        run.repaired,
        "".join(f"; {r['object']} {r['id']} {r.get('fields', '')}" for r in repairs[:20]),
    )
    return run


def _repair(kind: str, object_id_: str, result: SyncResult) -> dict:
    return {"object": kind, "id": object_id_, "created": result.created, "fields": result.changes}

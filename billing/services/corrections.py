"""Operator corrections to issued invoices, always through Stripe (the document
of record): a credit note (optionally refunded) or voiding an open invoice.
Issued invoices are never edited; the mirror is updated from Stripe's answer."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import stripe
from django.db import transaction

from accounts.models import AuditEvent, User
from billing import stripe_api
from billing.models_invoices import CreditNote, CreditNoteReason, Invoice, InvoiceStatus
from billing.money import quantize, to_minor_units
from billing.services.invoices import credit_note_sync, invoice_sync_by_id
from billing.stripe_api import StripeFailed
from config.errors import InvalidRequest

logger = logging.getLogger(__name__)


def _audit(invoice: Invoice, actor: User | None, action: str, **data: Any) -> None:
    AuditEvent.objects.create(
        workspace=invoice.workspace, actor=actor, action=action, target=str(invoice), data=data
    )


def creditable_amount(invoice: Invoice) -> Decimal:
    return max(Decimal(0), invoice.total - invoice.credited_total)


def credit_note_issue(
    *,
    invoice: Invoice,
    amount: Decimal,
    reason: str,
    memo: str = "",
    refund: bool = False,
    actor: User | None,
) -> CreditNote:
    """Credit `amount` (tax included) on an open or paid invoice. On a paid invoice
    the credit is refunded to the card (`refund`) or kept as customer balance for
    the next invoice; on an open one it lowers what is due."""
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
        raise InvalidRequest(f"A {invoice.status} invoice can't be credited.")
    if reason not in CreditNoteReason.values:
        raise InvalidRequest("Choose a reason.", details={"reason": ["unknown reason"]})
    amount = quantize(amount, invoice.currency)
    if amount <= 0 or amount > creditable_amount(invoice):
        raise InvalidRequest(
            f"The amount must be between 0 and {creditable_amount(invoice)} "
            f"{invoice.currency.upper()}.",
            details={"amount": ["out of range"]},
        )
    minor = to_minor_units(amount, invoice.currency)
    params: dict[str, Any] = {"invoice": invoice.stripe_invoice_id, "amount": minor}
    params["reason"] = reason
    if memo:
        params["memo"] = memo[:500]
    post_payment = minor - min(minor, to_minor_units(invoice.amount_remaining, invoice.currency))
    if invoice.status == InvoiceStatus.PAID:
        post_payment = minor
    if post_payment:
        params["refund_amount" if refund else "credit_amount"] = post_payment
    try:
        note = stripe_api.client().v1.credit_notes.create(params)
    except stripe.InvalidRequestError as exc:
        raise InvalidRequest(f"Stripe refused the credit note: {exc.user_message}") from None
    except stripe.StripeError as exc:
        logger.warning("credit note create failed: %s", type(exc).__name__)
        raise StripeFailed() from exc
    with transaction.atomic():
        row = credit_note_sync(credit_note=note, source="admin")
        _audit(
            invoice,
            actor,
            "billing.credit_note_issued",
            credit_note=note.id,
            amount=str(amount),
            reason=reason,
            refund=refund,
        )
    invoice_sync_by_id(stripe_invoice_id=invoice.stripe_invoice_id, source="admin")
    assert row is not None
    return row


def invoice_void(*, invoice: Invoice, actor: User | None) -> Invoice:
    """Void an open invoice at Stripe (it stays in the register as void)."""
    if invoice.status != InvoiceStatus.OPEN:
        raise InvalidRequest(f"Only open invoices can be voided; this one is {invoice.status}.")
    try:
        stripe_api.client().v1.invoices.void_invoice(invoice.stripe_invoice_id)
    except stripe.InvalidRequestError as exc:
        raise InvalidRequest(f"Stripe refused to void the invoice: {exc.user_message}") from None
    except stripe.StripeError as exc:
        logger.warning("invoice void failed: %s", type(exc).__name__)
        raise StripeFailed() from exc
    result = invoice_sync_by_id(stripe_invoice_id=invoice.stripe_invoice_id, source="admin")
    _audit(invoice, actor, "billing.invoice_voided")
    assert result.invoice is not None
    return result.invoice

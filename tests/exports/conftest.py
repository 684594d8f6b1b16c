"""Finance test data: mirrored invoices, lines and credit notes written the way
the Stripe sync writes them (`from_stripe=True`), and a private MEDIA_ROOT."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from billing.models_invoices import CreditNote, Invoice, InvoiceLine

_ids = itertools.count(1)
NOV = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DEC = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def make_invoice(
    workspace,
    *,
    issued: dt.datetime = NOV + dt.timedelta(days=3),
    currency: str = "usd",
    status: str = "paid",
    lines: tuple[tuple[str, str, str], ...] = (("plan_fee", "29.00", "5.51"),),
    discount: str = "0.00",
    legal_name: str = "Acme GmbH",
    country: str = "DE",
    tier=None,
) -> Invoice:
    n = next(_ids)
    subtotal = sum((Decimal(a) for _, a, _ in lines), Decimal(0))
    tax = sum((Decimal(t) for _, _, t in lines), Decimal(0))
    net = subtotal - Decimal(discount)
    total = net + tax
    paid = total if status == "paid" else Decimal(0)
    invoice = Invoice(
        workspace=workspace,
        stripe_invoice_id=f"in_test{n}",
        stripe_customer_id=f"cus_test{workspace.pk}",
        stripe_subscription_id="sub_test",
        number=f"TG-{n:05d}",
        status=status,
        billing_reason="subscription_cycle",
        customer_legal_name=legal_name,
        customer_country=country,
        customer_tax_id="DE136695976",
        currency=currency,
        subtotal=subtotal,
        discount=Decimal(discount),
        net=net,
        tax=tax,
        total=total,
        amount_paid=paid,
        amount_due=total,
        amount_remaining=total - paid,
        service_period_start=issued,
        service_period_end=issued + dt.timedelta(days=30),
        created_at=issued,
        finalized_at=issued,
        due_date=issued + dt.timedelta(days=14),
        paid_at=issued + dt.timedelta(hours=1) if status == "paid" else None,
        payment_method_summary="visa •••• 4242" if status == "paid" else "",
        stripe_payment_intent_id=f"pi_test{n}",
        stripe_charge_id=f"ch_test{n}" if status == "paid" else "",
    )
    invoice.save(from_stripe=True)
    for pos, (kind, amount, line_tax) in enumerate(lines):
        InvoiceLine.objects.create(
            invoice=invoice,
            stripe_line_id=f"il_{n}_{pos}",
            position=pos,
            kind=kind,
            description=f"{kind} line",
            period_start=issued,
            period_end=issued + dt.timedelta(days=30),
            quantity=Decimal(1),
            currency=currency,
            unit_amount=Decimal(amount),
            amount=Decimal(amount),
            tax=Decimal(line_tax),
            tier=tier,
        )
    return invoice


def make_credit_note(invoice: Invoice, *, amount: str = "10.00", refund: bool = True) -> CreditNote:
    n = next(_ids)
    note = CreditNote(
        workspace=invoice.workspace,
        invoice=invoice,
        stripe_credit_note_id=f"cn_test{n}",
        number=f"{invoice.number}-CN{n}",
        status="issued",
        type="post_payment",
        reason="order_change",
        currency=invoice.currency,
        subtotal=Decimal(amount),
        total=Decimal(amount),
        refund_amount=Decimal(amount) if refund else Decimal(0),
        created_at=invoice.created_at + dt.timedelta(days=2),
    )
    note.save(from_stripe=True)
    return note

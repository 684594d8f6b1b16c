"""The invoice mirror end to end: the real stripe SDK against the fake Stripe,
real signed webhooks. A full period (subscribe, upgrade with proration, metered
overage, a failed then recovered payment, a credit note with refund), then the
mirror equals Stripe's objects field by field; the archived PDF carries the
number, both parties and the totals; each invoicing email goes out once."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from pypdf import PdfReader

from billing.models import Subscription
from billing.models_invoices import (
    CreditNote,
    ImmutableInvoiceError,
    Invoice,
    InvoiceEmail,
    InvoiceResync,
    LineKind,
)
from billing.money import from_minor_units, from_minor_units_decimal
from billing.services.corrections import credit_note_issue
from billing.services.invoices import invoices_resync
from billing.stripe_api import from_timestamp
from tests.billing.helpers import deliver
from tests.billing.test_flow import api_upgrade, subscribe

DETAILS = {
    "legal_name": "Acme Analytics GmbH",
    "address_line1": "Hauptstraße 1",
    "postal_code": "80331",
    "city": "München",
    "country": "DE",
    "tax_id": "DE 811 569 869",
    "invoice_email": "invoices@acme.example",
}


class Webhooks:
    """Deliver each of the fake's events once, in order, running on-commit work."""

    def __init__(self, client, fake, capture):
        self.client, self.fake, self.capture = client, fake, capture
        self.sent: set[str] = set()

    def deliver_new(self) -> int:
        self.fake.flush()
        new = [e for e in self.fake.events() if e["id"] not in self.sent]
        for event in new:
            with self.capture(execute=True):
                assert deliver(self.client, self.fake, event).status_code == 200
            self.sent.add(event["id"])
        return len(new)

    def redeliver_all(self) -> None:
        for event in self.fake.events():
            with self.capture(execute=True):
                assert deliver(self.client, self.fake, event).status_code == 200


def money(amount: int, currency: str) -> Decimal:
    return from_minor_units(amount, currency)


def assert_invoice_mirrors(row: Invoice, inv) -> None:
    """Every mirrored field equals Stripe's (money converted by billing.money)."""
    cur = inv.currency
    discount = sum(d.amount for d in inv.total_discount_amounts or [])
    tax = sum(t.amount for t in inv.total_taxes or [])
    expected = {
        "number": inv.number or "",
        "status": inv.status,
        "currency": cur,
        "stripe_customer_id": inv.customer,
        "billing_reason": inv.billing_reason,
        "subtotal": money(inv.subtotal, cur),
        "discount": money(discount, cur),
        "net": money(inv.total_excluding_tax, cur),
        "tax": money(tax, cur),
        "total": money(inv.total, cur),
        "amount_paid": money(inv.amount_paid, cur),
        "amount_due": money(inv.amount_due, cur),
        "amount_remaining": money(inv.amount_remaining, cur),
        "credited_total": money(
            inv.pre_payment_credit_notes_amount + inv.post_payment_credit_notes_amount, cur
        ),
        "created_at": from_timestamp(inv.created),
        "finalized_at": from_timestamp(inv.status_transitions.finalized_at),
        "paid_at": from_timestamp(inv.status_transitions.paid_at),
        "voided_at": from_timestamp(inv.status_transitions.voided_at),
        "period_start": from_timestamp(inv.period_start),
        "period_end": from_timestamp(inv.period_end),
        "hosted_invoice_url": inv.hosted_invoice_url or "",
        "invoice_pdf": inv.invoice_pdf or "",
        "customer_legal_name": inv.customer_name or "",
        "customer_email": inv.customer_email or "",
        "customer_country": inv.customer_address.country if inv.customer_address else "",
        "customer_tax_id": inv.customer_tax_ids[0].value if inv.customer_tax_ids else "",
        "attempt_count": inv.attempt_count,
    }
    actual = {name: getattr(row, name) for name in expected}
    assert actual == expected, row.number
    assert row.net + row.tax == row.total
    lines = list(row.lines.all())
    assert [ln.stripe_line_id for ln in lines] == [ln.id for ln in inv.lines.data]
    for mirrored, line in zip(lines, inv.lines.data, strict=True):
        assert mirrored.amount == money(line.amount, cur)
        assert mirrored.tax == money(sum(t.amount for t in line.taxes), cur)
        assert mirrored.discount == money(sum(d.amount for d in line.discount_amounts), cur)
        assert mirrored.quantity == Decimal(line.quantity)
        assert mirrored.unit_amount == from_minor_units_decimal(
            line.pricing.unit_amount_decimal, cur
        )
        assert mirrored.period_start == from_timestamp(line.period.start)
        assert mirrored.period_end == from_timestamp(line.period.end)
        assert mirrored.proration == line.parent.subscription_item_details.proration
    assert sum(ln.amount for ln in lines) == row.subtotal
    assert sum(ln.tax for ln in lines) == row.tax
    if lines:
        assert row.service_period_start == min(ln.period_start for ln in lines)
        assert row.service_period_end == max(ln.period_end for ln in lines)


def assert_credit_note_mirrors(row: CreditNote, note) -> None:
    cur = note.currency
    assert (row.number, row.status, row.reason, row.type) == (
        note.number,
        note.status,
        note.reason or "",
        note.type,
    )
    assert row.invoice.stripe_invoice_id == note.invoice
    assert row.subtotal == money(note.subtotal, cur)
    assert row.tax == money(sum(t.amount for t in note.total_taxes), cur)
    assert row.total == money(note.total, cur)
    assert row.refund_amount == money(sum(r.amount_refunded for r in note.refunds), cur)
    assert row.created_at == from_timestamp(note.created)
    assert [ln.amount for ln in row.lines.all()] == [
        money(ln.amount, cur) for ln in note.lines.data
    ]


@pytest.fixture
def taxed(stripe_env):
    stripe_env.set_tax_rate("DE", "19")
    return stripe_env


def test_a_full_period_is_mirrored_field_by_field(
    client, owner, workspace, stripe_tiers, taxed, django_capture_on_commit_callbacks
):
    fake = taxed
    hooks = Webhooks(client, fake, django_capture_on_commit_callbacks)
    client.force_login(owner)

    # Billing details first: they reach the Stripe customer, so the invoices print them.
    sub = subscribe(workspace, stripe_tiers["pro"], fake)  # invoice 1 (before the details)
    response = client.put("/api/v1/billing/details", DETAILS, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["tax_id"] == "DE811569869"
    assert response.json()["tax_id_type"] == "eu_vat"
    customer = fake.client().v1.customers.retrieve(sub.stripe_customer_id)
    assert customer.name == DETAILS["legal_name"] and customer.address.country == "DE"
    tax_ids = fake.client().v1.customers.tax_ids.list(sub.stripe_customer_id).data
    assert [(t.type, t.value) for t in tax_ids] == [("eu_vat", "DE811569869")]

    # Upgrade with proration (invoice 2), then metered overage on Team.
    assert api_upgrade(client, "team").json()["outcome"] == "upgraded"
    hooks.deliver_new()
    sub.refresh_from_db()
    assert sub.tier.slug == "team"
    # Team's metered overage item, added at Stripe (an upgrade from Pro keeps only
    # the base item today: reported to the lead, not this test's subject).
    fake.client().v1.subscriptions.update(
        sub.stripe_subscription_id,
        {
            "items": [{"price": stripe_tiers["team"].stripe_overage_price_id}],
            "proration_behavior": "none",
        },
    )
    fake.client().v1.billing.meter_events.create(
        {
            "event_name": settings.BILLING_OVERAGE_METER_EVENT,
            "identifier": "usage-test-1",
            "payload": {"stripe_customer_id": sub.stripe_customer_id, "value": "2500000"},
        }
    )
    # The renewal fails (invoice 3 open), the card is fixed, it is paid.
    fake.set_card_failing(sub.stripe_customer_id)
    renewal = fake.advance(sub.stripe_subscription_id)["invoice"]
    hooks.deliver_new()
    assert Invoice.objects.get(stripe_invoice_id=renewal["id"]).status == "open"
    fake.set_card_failing(sub.stripe_customer_id, False)
    fake.client().v1.invoices.pay(renewal["id"])
    hooks.deliver_new()

    # An operator credits part of the renewal, refunded to the card.
    renewal_row = Invoice.objects.get(stripe_invoice_id=renewal["id"])
    note_row = credit_note_issue(
        invoice=renewal_row,
        amount=Decimal("11.90"),
        reason="product_unsatisfactory",
        memo="Outage on the 3rd",
        refund=True,
        actor=None,
    )
    hooks.deliver_new()
    hooks.redeliver_all()  # Stripe's resends change nothing

    # --- the mirror equals Stripe, field by field --------------------------------------
    stripe_invoices = fake.client().v1.invoices.list({"customer": sub.stripe_customer_id}).data
    assert len(stripe_invoices) == 3
    for inv in stripe_invoices:
        assert_invoice_mirrors(Invoice.objects.get(stripe_invoice_id=inv.id), inv)
    first, upgrade, renewal_row = Invoice.objects.order_by("created_at", "pk")
    assert first.tax == 0 and first.customer_tax_id == ""  # issued before the details
    assert [ln.kind for ln in first.lines.all()] == [LineKind.PLAN_FEE]
    assert {ln.kind for ln in upgrade.lines.all()} == {LineKind.PRORATION}
    assert upgrade.tax > 0 and upgrade.customer_tax_id == "DE811569869"
    kinds = [ln.kind for ln in renewal_row.lines.all()]
    assert LineKind.METERED_OVERAGE in kinds and LineKind.PLAN_FEE in kinds
    overage = renewal_row.lines.get(kind=LineKind.METERED_OVERAGE)
    assert overage.quantity == 2_500_000 and overage.tier.slug == "team"
    assert overage.unit_amount == Decimal("0.000008")  # $8 per million tokens
    assert overage.amount == Decimal("20.00")
    assert renewal_row.payment_method_summary == "visa •••• 4242"
    assert renewal_row.stripe_charge_id.startswith("ch_")
    assert list(renewal_row.status_history.values_list("status", flat=True)) == [
        "draft",
        "open",
        "paid",
    ]
    note = fake.client().v1.credit_notes.retrieve(note_row.stripe_credit_note_id)
    note_row.refresh_from_db()
    assert_credit_note_mirrors(note_row, note)
    assert note_row.total == Decimal("11.90") and note_row.tax == Decimal("1.90")
    assert renewal_row.credited_total == Decimal("11.90")
    refund = fake.client().v1.refunds.retrieve(note_row.stripe_refund_id)
    assert refund.amount == 1190

    # --- the archived PDFs ---------------------------------------------------------------
    for row in (upgrade, renewal_row):
        row.refresh_from_db()
        assert row.pdf_sha256 and row.pdf_archived_at
        with row.pdf_file.open("rb") as handle:
            content = handle.read()
        assert hashlib.sha256(content).hexdigest() == row.pdf_sha256
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
        for needle in (
            row.number,
            settings.TOLLGATE_OPERATOR_LEGAL_NAME,
            settings.TOLLGATE_OPERATOR_TAX_ID,
            DETAILS["legal_name"],
            "DE811569869",
            f"${row.total:,}",  # the tiers are priced in usd
            f"${row.tax:,}",
            f"${row.net:,}",
        ):
            assert needle in text, (needle, text)
        served = client.get(f"/api/v1/invoices/{row.stripe_invoice_id}/pdf")
        assert served.status_code == 200 and served["Content-Type"] == "application/pdf"
        assert hashlib.sha256(b"".join(served.streaming_content)).hexdigest() == row.pdf_sha256

    # --- emails: ready (PDF attached) and receipt, once each -------------------------------
    sent = InvoiceEmail.objects.filter(sent_at__isnull=False)
    assert sorted(sent.values_list("invoice__number", "kind")) == sorted(
        (inv.number, kind) for inv in (first, upgrade, renewal_row) for kind in ("ready", "receipt")
    )
    ready = [m for m in mail.outbox if m.subject.endswith(f"Invoice {renewal_row.number} is ready")]
    assert len(ready) == 1 and ready[0].to == [DETAILS["invoice_email"]]
    _name, content, mimetype = ready[0].attachments[0]
    assert mimetype == "application/pdf" and content.startswith(b"%PDF-")
    receipts = [m for m in mail.outbox if f"Receipt for invoice {renewal_row.number}" in m.subject]
    assert len(receipts) == 1

    # --- the API ----------------------------------------------------------------------------
    body = client.get(f"/api/v1/invoices/{renewal_row.stripe_invoice_id}").json()
    assert body["number"] == renewal_row.number and body["status"] == "paid"
    assert body["total"] == str(renewal_row.total) and body["tax"] == str(renewal_row.tax)
    assert body["paid_at"] and body["payment_method"] == "visa •••• 4242"
    assert body["credit_notes"][0]["number"] == note.number
    assert {ln["kind"] for ln in body["lines"]} >= {"plan_fee", "metered_overage"}
    assert body["customer"]["tax_id"] == "DE811569869"
    listed = client.get("/api/v1/invoices", {"status": "paid", "limit": 2}).json()
    assert len(listed["results"]) == 2 and listed["next"]
    rest = client.get(listed["next"]).json()
    assert len(rest["results"]) == 1
    assert client.get("/api/v1/invoices", {"status": "void"}).json()["results"] == []
    assert client.get("/api/v1/invoices", {"status": "nope"}).status_code == 400
    assert client.get("/api/v1/invoices", {"start": "2026-13-01"}).status_code == 400

    # --- the pages ------------------------------------------------------------------------------
    page = client.get("/billing/").content.decode()
    assert renewal_row.number in page and note.number in page
    detail = client.get(f"/billing/invoices/{renewal_row.stripe_invoice_id}/").content.decode()
    assert note.number in detail and "visa •••• 4242" in detail

    # --- issued invoices are never edited locally -------------------------------------------------
    renewal_row.total = Decimal("1.00")
    with pytest.raises(ImmutableInvoiceError):
        renewal_row.save()


def test_nightly_resync_repairs_drift_and_reports_it(
    client, owner, workspace, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    hooks = Webhooks(client, stripe_env, django_capture_on_commit_callbacks)
    sub = subscribe(workspace, stripe_tiers["pro"], stripe_env)
    stripe_env.advance(sub.stripe_subscription_id)
    hooks.deliver_new()
    first, second = Invoice.objects.order_by("created_at", "pk")
    # Drift: a lost webhook (second unknown) and a damaged row (first).
    Invoice.objects.filter(pk=first.pk).update(status="open", amount_paid=Decimal("0"))
    second.lines.all().delete()
    Invoice.objects.filter(pk=second.pk).delete()

    with django_capture_on_commit_callbacks(execute=True):
        run = invoices_resync()
    assert run.invoices_checked == 2 and run.repaired == 2 and not run.error
    repairs = {r["id"]: r for r in run.repairs}
    assert repairs[first.stripe_invoice_id]["fields"]["status"] == ["open", "paid"]
    assert repairs[first.stripe_invoice_id]["fields"]["amount_paid"] == ["0.00", "29.00"]
    assert repairs[second.stripe_invoice_id]["created"] is True
    first.refresh_from_db()
    assert first.status == "paid" and first.amount_paid == Decimal("29.00")
    assert Invoice.objects.get(stripe_invoice_id=second.stripe_invoice_id).lines.count() == 1
    assert invoices_resync().repaired == 0  # nothing left to repair
    assert InvoiceResync.objects.count() == 2
    assert Subscription.objects.get(workspace=workspace).stripe_customer_id

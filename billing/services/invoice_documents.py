"""The invoice's documents: the archived PDF (Stripe's, fetched once on
finalization, kept with its sha256) and the invoicing emails (ready + receipt),
each sent once per invoice."""

from __future__ import annotations

import logging

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Membership
from accounts.notifications import EmailKind, wanted_recipients
from accounts.roles import Role
from billing.enqueue import enqueue_on_commit
from billing.models_invoices import (
    BillingDetails,
    Invoice,
    InvoiceEmail,
    InvoiceEmailKind,
    InvoiceStatus,
)
from config import clock

logger = logging.getLogger(__name__)

PDF_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_PDF_BYTES = 20_000_000


class PdfUnavailable(Exception):
    """Stripe's PDF could not be fetched (yet): the task retries."""


def _fetch_pdf(url: str) -> bytes:
    with httpx.Client(timeout=PDF_TIMEOUT, follow_redirects=True) as http:
        response = http.get(url)
    content = response.content
    if response.status_code != 200 or not content.startswith(b"%PDF-"):
        raise PdfUnavailable(f"{url}: HTTP {response.status_code}, not a PDF")
    if len(content) > MAX_PDF_BYTES:
        raise PdfUnavailable(f"{url}: {len(content)} bytes is over the limit")
    return content


def invoice_pdf_archive(*, invoice_pk: int) -> Invoice:
    """Fetch and store the finalized invoice's PDF once; then the 'ready' email."""
    invoice = Invoice.objects.get(pk=invoice_pk)
    if invoice.pdf_sha256 or not invoice.invoice_pdf:
        return invoice
    content = _fetch_pdf(invoice.invoice_pdf)
    digest = Invoice.sha256_of(content)
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice_pk)
        if locked.pdf_sha256:  # another worker archived it meanwhile
            return locked
        name = locked.pdf_file.field.generate_filename(locked, "invoice.pdf")
        stored_name = locked.pdf_file.storage.save(name, ContentFile(content))
        # The archive is Tollgate's own column, written once: not a local edit of
        # the Stripe document (queryset update, no StripeMirror.save).
        Invoice.objects.filter(pk=invoice_pk, pdf_sha256="").update(
            pdf_file=stored_name, pdf_sha256=digest, pdf_archived_at=clock.now()
        )
        enqueue_on_commit("send_invoice_email", invoice_pk, InvoiceEmailKind.READY)
    logger.info("invoice %s: PDF archived (%s bytes, sha256 %s)", invoice, len(content), digest)
    locked.refresh_from_db()
    return locked


def open_archived_pdf(invoice: Invoice) -> bytes:
    with invoice.pdf_file.open("rb") as handle:
        return handle.read()


# --- emails ------------------------------------------------------------------------------------


def invoice_recipients(invoice: Invoice) -> list[str]:
    """The workspace's invoice email, else its owners and finance members who
    want invoices and receipts (their email preferences, accounts.notifications)."""
    details = BillingDetails.objects.filter(workspace_id=invoice.workspace_id).first()
    if details is not None and details.invoice_email:
        return [details.invoice_email]
    members = Membership.objects.filter(
        workspace_id=invoice.workspace_id,
        role__in=[Role.OWNER, Role.FINANCE],
        user__is_active=True,
    ).select_related("user")
    return wanted_recipients([m.user for m in members], EmailKind.INVOICES)


def _message(invoice: Invoice, kind: str, recipients: list[str]) -> EmailMultiAlternatives:
    site = settings.SITE_URL.rstrip("/")
    context = {
        "invoice": invoice,
        "workspace": invoice.workspace,
        "operator": settings.TOLLGATE_OPERATOR_LEGAL_NAME,
        "invoice_url": site + reverse("billing:invoice", args=[invoice.stripe_invoice_id]),
        "billing_url": site + reverse("billing:overview"),
    }
    template = "invoice_ready" if kind == InvoiceEmailKind.READY else "invoice_receipt"
    if kind == InvoiceEmailKind.READY:
        subject = f"Invoice {invoice.number} is ready"
    else:
        subject = f"Receipt for invoice {invoice.number}"
    message = EmailMultiAlternatives(
        subject=f"[Tollgate] {subject}",
        body=render_to_string(f"billing/email/{template}.txt", context),
        to=recipients,
    )
    message.attach_alternative(
        render_to_string(f"billing/email/{template}.html", context), "text/html"
    )
    if kind == InvoiceEmailKind.READY and invoice.pdf_sha256:
        message.attach(
            f"invoice-{invoice.number}.pdf", open_archived_pdf(invoice), "application/pdf"
        )
    return message


def _due(invoice: Invoice, kind: str) -> bool:
    if kind == InvoiceEmailKind.READY:
        return bool(invoice.finalized_at) and invoice.status != InvoiceStatus.VOID
    return invoice.status == InvoiceStatus.PAID and invoice.amount_paid > 0


def invoice_email_send(*, invoice_pk: int, kind: str) -> InvoiceEmail | None:
    """Send the email once: the InvoiceEmail row is claimed and marked sent in one
    transaction (a failed send rolls the claim back, so the retry sends)."""
    if kind not in InvoiceEmailKind.values:
        raise ValueError(f"unknown invoice email kind {kind!r}")
    invoice = Invoice.objects.select_related("workspace").get(pk=invoice_pk)
    if not _due(invoice, kind):
        return None
    recipients = invoice_recipients(invoice)
    if not recipients:
        return None
    try:
        with transaction.atomic():
            row, _ = InvoiceEmail.objects.get_or_create(invoice=invoice, kind=kind)
            row = InvoiceEmail.objects.select_for_update().get(pk=row.pk)
            if row.sent_at is not None:
                return row
            _message(invoice, kind, recipients).send()
            row.recipients, row.sent_at = recipients, clock.now()
            row.save(update_fields=["recipients", "sent_at"])
    except IntegrityError:  # a twin worker created the row first; it sends
        return InvoiceEmail.objects.filter(invoice=invoice, kind=kind).first()
    return row

"""Stripe webhooks are triggers (STYLE.md 7): verify, store the event once by
its id, process it in Celery, and let each small handler re-fetch the object
from Stripe so a late or replayed event can't roll anything back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from billing.enqueue import enqueue_on_commit
from billing.models import Invoice, StripeEvent
from billing.models_invoices import InvoiceEmailKind
from billing.services.invoices import (
    charge_refunded_sync,
    credit_note_sync_by_id,
    invoice_sync_by_id,
)
from billing.services.subscriptions import checkout_complete, subscription_sync
from billing.stripe_api import field, from_timestamp
from config import clock

logger = logging.getLogger(__name__)


def event_store(*, event: stripe.Event, payload: bytes) -> StripeEvent | None:
    """Store a verified event (the outbox row); None when this event id was stored
    before. Processing is queued on commit. A resend of an event that is stored
    but still unprocessed (its enqueue was lost, e.g. the broker was down) queues
    it again: the row, not the broker, is the record of work to do."""
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=event.id,
                type=field(event, "type", ""),
                livemode=bool(field(event, "livemode", False)),
                stripe_created=from_timestamp(field(event, "created")),
                payload=json.loads(payload),  # as sent: JSON-safe, no Decimals
            )
            enqueue_on_commit("process_stripe_event", stored.pk)
    except IntegrityError:
        pending = StripeEvent.objects.filter(event_id=event.id, processed_at__isnull=True)
        for pk in pending.values_list("pk", flat=True):
            enqueue_on_commit("process_stripe_event", pk)
        return None
    return stored


# An event whose handler keeps failing stops being swept after this many attempts
# (it stays visible in admin with its last error; "Process again" re-queues it).
SWEEP_MAX_ATTEMPTS = 30


def events_requeue_unprocessed(*, limit: int = 500) -> int:
    """Beat sweeper: queue stored events still unprocessed after a grace period
    (their first enqueue was lost, or every retry failed)."""
    cutoff = clock.now() - timedelta(seconds=settings.TOLLGATE_WEBHOOK_SWEEP_AFTER_SECONDS)
    pks = list(
        StripeEvent.objects.filter(
            processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=SWEEP_MAX_ATTEMPTS
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in pks:
        enqueue_on_commit("process_stripe_event", pk)
    if pks:
        logger.warning("webhook sweeper: re-queued %s unprocessed Stripe events", len(pks))
    return len(pks)


# --- Handlers: each re-fetches what the event names ---------------------------------


def _on_checkout_completed(obj_id: str) -> None:
    checkout_complete(session_id=obj_id)


def _on_subscription(obj_id: str) -> None:
    subscription_sync(stripe_subscription_id=obj_id)


def _on_invoice(obj_id: str) -> None:
    result = invoice_sync_by_id(stripe_invoice_id=obj_id)
    subscription_id = result.invoice.stripe_subscription_id if result.invoice else ""
    if subscription_id:
        # A paid renewal starts a new period; a failed payment may change status.
        subscription_sync(stripe_subscription_id=subscription_id)


def _on_invoice_paid(obj_id: str) -> None:
    _on_invoice(obj_id)
    invoice = Invoice.objects.filter(stripe_invoice_id=obj_id).first()
    if invoice is not None:
        enqueue_on_commit("send_invoice_email", invoice.pk, InvoiceEmailKind.RECEIPT)


def _on_invoice_payment_failed(obj_id: str) -> None:
    _on_invoice(obj_id)
    invoice = Invoice.objects.filter(stripe_invoice_id=obj_id).first()
    if invoice is not None:
        from billing.services.dunning import payment_failed

        payment_failed(invoice=invoice)  # the email, once per invoice


def _on_credit_note(obj_id: str) -> None:
    credit_note_sync_by_id(stripe_credit_note_id=obj_id)


def _on_charge_refunded(obj_id: str) -> None:
    charge_refunded_sync(stripe_charge_id=obj_id)


HANDLERS: dict[str, Callable[[str], None]] = {
    "checkout.session.completed": _on_checkout_completed,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "customer.subscription.pending_update_applied": _on_subscription,
    "customer.subscription.pending_update_expired": _on_subscription,
    "invoice.created": _on_invoice,
    "invoice.deleted": _on_invoice,
    "invoice.finalized": _on_invoice,
    "invoice.updated": _on_invoice,
    "invoice.paid": _on_invoice_paid,
    "invoice.payment_succeeded": _on_invoice,
    "invoice.payment_failed": _on_invoice_payment_failed,
    "invoice.voided": _on_invoice,
    "invoice.marked_uncollectible": _on_invoice,
    "credit_note.created": _on_credit_note,
    "credit_note.updated": _on_credit_note,
    "credit_note.voided": _on_credit_note,
    "charge.refunded": _on_charge_refunded,
}


def event_process(*, event_pk: int) -> StripeEvent | None:
    """Run the handler for a stored event exactly once: the row is locked (a twin
    delivery skips it), the handler runs in a savepoint, and `processed_at` is
    set in the same transaction as the handler's writes. A failure is recorded
    and re-raised, so Celery retries; the sweeper catches what retries miss."""
    failure: Exception | None = None
    with transaction.atomic():
        stored = StripeEvent.objects.select_for_update(skip_locked=True).filter(pk=event_pk).first()
        if stored is None or stored.processed_at is not None:
            return stored  # locked by a twin worker, or done
        stored.attempts += 1
        handler = HANDLERS.get(stored.type)
        obj_id = _object_id(stored.payload)
        try:
            with transaction.atomic():
                if handler is not None and obj_id:
                    handler(obj_id)
            stored.processed_at, stored.last_error = clock.now(), ""
        except Exception as exc:
            failure = exc
            stored.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        stored.save(update_fields=["attempts", "processed_at", "last_error"])
    if failure is not None:
        raise failure
    return stored


def _object_id(payload: Any) -> str:
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    value = obj.get("id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""

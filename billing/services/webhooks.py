"""Stripe webhooks are triggers (STYLE.md 7): verify, store the event once by
its id, process it in Celery, and let each small handler re-fetch the object
from Stripe so a late or replayed event can't roll anything back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import stripe
from django.db import IntegrityError, transaction

from accounts.models import Workspace
from billing import stripe_api
from billing.enqueue import enqueue_on_commit
from billing.models import Invoice, StripeEvent, Subscription
from billing.money import from_minor_units
from billing.services.subscriptions import checkout_complete, subscription_sync
from billing.stripe_api import field, from_timestamp, object_id
from config import clock

logger = logging.getLogger(__name__)


def event_store(*, event: stripe.Event, payload: bytes) -> StripeEvent | None:
    """Store a verified event; None when this event id was stored before (a replay).
    Processing is queued on commit, so the worker always finds the row."""
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
        return None
    return stored


# --- Handlers: each re-fetches what the event names ---------------------------------


def _on_checkout_completed(obj_id: str) -> None:
    checkout_complete(session_id=obj_id)


def _on_subscription(obj_id: str) -> None:
    subscription_sync(stripe_subscription_id=obj_id)


def _invoice_subscription_id(invoice) -> str:
    # API ≥ 2025-03-31: invoice.parent.subscription_details.subscription.
    details = field(field(invoice, "parent", {}), "subscription_details", {})
    return object_id(field(details, "subscription")) or object_id(field(invoice, "subscription"))


def invoice_sync(*, invoice) -> Invoice | None:
    customer_id = object_id(field(invoice, "customer"))
    row = Subscription.objects.filter(stripe_customer_id=customer_id).first()
    workspace_id = field(field(invoice, "metadata", {}), "workspace_id")
    workspace = row.workspace if row else Workspace.objects.filter(pk=workspace_id or 0).first()
    if workspace is None:
        return None
    currency = field(invoice, "currency", "usd")
    values = {
        "workspace": workspace,
        "number": field(invoice, "number", ""),
        "status": field(invoice, "status", ""),
        "currency": currency,
        "total": from_minor_units(field(invoice, "total", 0), currency),
        "amount_due": from_minor_units(field(invoice, "amount_due", 0), currency),
        "amount_paid": from_minor_units(field(invoice, "amount_paid", 0), currency),
        "period_start": from_timestamp(field(invoice, "period_start")),
        "period_end": from_timestamp(field(invoice, "period_end")),
        "hosted_invoice_url": field(invoice, "hosted_invoice_url", ""),
        "invoice_pdf": field(invoice, "invoice_pdf", ""),
        "billing_reason": field(invoice, "billing_reason", ""),
        "created_at": from_timestamp(field(invoice, "created")) or clock.now(),
    }
    mirrored, _ = Invoice.objects.update_or_create(stripe_invoice_id=invoice.id, defaults=values)
    return mirrored


def _on_invoice(obj_id: str) -> None:
    invoice = stripe_api.client().v1.invoices.retrieve(obj_id)
    invoice_sync(invoice=invoice)
    subscription_id = _invoice_subscription_id(invoice)
    if subscription_id:
        # A paid renewal starts a new period; a failed payment may change status.
        subscription_sync(stripe_subscription_id=subscription_id)


def _on_invoice_payment_failed(obj_id: str) -> None:
    _on_invoice(obj_id)
    invoice = Invoice.objects.filter(stripe_invoice_id=obj_id).first()
    if invoice is not None:
        from billing.services.dunning import payment_failed

        payment_failed(invoice=invoice)  # the email, once per invoice


HANDLERS: dict[str, Callable[[str], None]] = {
    "checkout.session.completed": _on_checkout_completed,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "customer.subscription.pending_update_applied": _on_subscription,
    "customer.subscription.pending_update_expired": _on_subscription,
    "invoice.paid": _on_invoice,
    "invoice.finalized": _on_invoice,
    "invoice.updated": _on_invoice,
    "invoice.payment_succeeded": _on_invoice,
    "invoice.payment_failed": _on_invoice_payment_failed,
}


def event_process(*, event_pk: int) -> StripeEvent:
    """Run the handler for a stored event. Safe to run again: handlers re-fetch."""
    with transaction.atomic():
        stored = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if stored.processed_at is not None:
            return stored
        stored.attempts += 1
        stored.save(update_fields=["attempts"])
    handler = HANDLERS.get(stored.type)
    obj_id = field(field(stored.payload.get("data", {}), "object", {}), "id", "")
    try:
        if handler is not None and obj_id:
            handler(obj_id)
    except Exception as exc:
        StripeEvent.objects.filter(pk=stored.pk).update(last_error=f"{type(exc).__name__}: {exc}")
        raise
    StripeEvent.objects.filter(pk=stored.pk).update(processed_at=clock.now(), last_error="")
    stored.refresh_from_db()
    return stored

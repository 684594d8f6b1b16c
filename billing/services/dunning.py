"""Dunning: access follows the Stripe subscription status (DESIGN.md).

| status | access |
| --- | --- |
| active, trialing | full |
| past_due | full, banner + emails; metered overage stops after the grace period |
| unpaid, canceled, incomplete_expired | feature calls refused (402 payment_overdue) |

The decision is made here, when Stripe's state is mirrored (subscription or
invoice webhooks), and stored on `DunningState`, which the limits provider
reads with the billing row in its one query: the hot path never decides.

A plain cancellation with nothing owed falls back to the free tier; `canceled`
refuses feature calls only while one of its invoices is still unpaid, so
"overdue" means money owed."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction

from billing.enqueue import enqueue_on_commit
from billing.models import DunningState, Invoice, Subscription
from billing.operator_settings import cached as operator_rules
from billing.services.usage_hooks import claim_notice
from config import clock

logger = logging.getLogger(__name__)

REFUSED_STATUSES = frozenset({"unpaid", "incomplete_expired"})
OWING_INVOICE_STATUSES = ("open", "uncollectible")


def _owes(sub: Subscription) -> bool:
    return (
        Invoice.objects.for_workspace(sub.workspace)
        .filter(status__in=OWING_INVOICE_STATUSES, amount_remaining__gt=0)
        .exists()
    )


def _refused(sub: Subscription) -> bool:
    if sub.status in REFUSED_STATUSES:
        return True
    return sub.status == "canceled" and _owes(sub)


def dunning_refresh(*, subscription_id: int) -> DunningState | None:
    """Decide access for the subscription's current status; queue the emails
    of a new episode (each once). Called after every subscription/invoice sync."""
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        state = DunningState.objects.filter(subscription=sub).first()
        now = clock.now()
        refused = _refused(sub)
        past_due = sub.status == "past_due"
        if state is None and not (past_due or refused):
            return None  # in good standing and never in dunning: nothing to keep
        if state is None:
            state = DunningState(subscription=sub, workspace_id=sub.workspace_id)
        was_refused = state.refused
        if past_due and state.past_due_since is None:
            state.past_due_since = now
        if not past_due and not refused:
            state.past_due_since = None  # recovered: the next failure starts afresh
        state.status, state.refused, state.updated_at = sub.status, refused, now
        state.save()
        if (
            refused
            and not was_refused
            and claim_notice(
                workspace_id=sub.workspace_id, kind="payment_overdue", period_start=now
            )
        ):
            enqueue_on_commit("send_dunning_email", sub.workspace_id, "payment_overdue")
    return state


def payment_failed(*, invoice: Invoice) -> bool:
    """The 'payment failed' email, once per invoice (Stripe retries the same
    invoice; the reminder covers the rest)."""
    if claim_notice(
        workspace_id=invoice.workspace_id, kind="payment_failed", period_start=invoice.created_at
    ):
        enqueue_on_commit("send_dunning_email", invoice.workspace_id, "payment_failed")
        return True
    return False


def reminders_due() -> int:
    """Beat: past_due for N days (operator setting) → one reminder per episode."""
    days = operator_rules().dunning_reminder_days
    due = DunningState.objects.filter(
        status="past_due", past_due_since__lte=clock.now() - timedelta(days=days)
    )
    sent = 0
    for state in due:
        with transaction.atomic():
            if claim_notice(
                workspace_id=state.workspace_id,
                kind="dunning_reminder",
                period_start=state.past_due_since,
            ):
                enqueue_on_commit("send_dunning_email", state.workspace_id, "reminder")
                sent += 1
    return sent

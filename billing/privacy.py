"""Billing's entries in the personal-data registry (accounts/privacy.py) and
what closing a workspace means for its Stripe subscription.

Kept (records of account, for TOLLGATE_LEGAL_RETENTION_YEARS): invoices (and
the credit notes finance adds), consent records (pseudonymized: who agreed
becomes "deleted-user-N", the IP and browser go), the subscription mirror and
the overage outbox. Deleted: once-per-period notices."""

from __future__ import annotations

import logging

import stripe
from django.db import models, transaction

from accounts import privacy
from accounts.privacy import Rows, Subject
from billing import selectors, stripe_api
from billing.models import (
    BillingDetails,
    BillingNotice,
    ConsentRecord,
    CreditNote,
    ExportJob,
    Invoice,
    OverageReport,
    Subscription,
)
from billing.money import format_money
from billing.services.subscriptions import _apply, subscription_cancel, subscription_row

logger = logging.getLogger(__name__)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _consent_rows(records) -> Rows:
    return [
        {
            "time": _iso(c.created_at),
            "workspace_id": c.workspace_id,
            "workspace": c.workspace_name,
            "person": c.user_email,
            "role": c.role,
            "from_plan": c.from_tier.name if c.from_tier else "Free",
            "to_plan": c.to_tier.name,
            "price_shown": str(c.price_shown),
            "currency": c.currency,
            "amount_due_now_shown": None
            if c.amount_due_now_shown is None
            else str(c.amount_due_now_shown),
            "terms_version": c.terms_version,
            "terms_sha256": c.terms_sha256,
            "channel": c.channel,
        }
        for c in records.select_related("from_tier", "to_tier")
    ]


def _invoice_rows(invoices) -> Rows:
    return [
        {
            "number": i.number,
            "stripe_invoice_id": i.stripe_invoice_id,
            "workspace_id": i.workspace_id,
            "status": i.status,
            "currency": i.currency,
            "total": str(i.total),
            "amount_due": str(i.amount_due),
            "amount_paid": str(i.amount_paid),
            "period_start": _iso(i.period_start),
            "period_end": _iso(i.period_end),
            "created_at": _iso(i.created_at),
            "hosted_invoice_url": i.hosted_invoice_url,
        }
        for i in invoices
    ]


def export(subject: Subject) -> dict[str, Rows]:
    if subject.user is not None:
        user = subject.user
        # A person's invoices: those of the workspaces whose billing they may see.
        from accounts.models import Membership
        from accounts.roles import Perm

        workspaces = [
            m.workspace_id for m in Membership.objects.for_user(user) if m.can(Perm.VIEW_BILLING)
        ]
        return {
            "consent_records": _consent_rows(ConsentRecord.objects.filter(user=user)),
            "invoices": _invoice_rows(Invoice.objects.filter(workspace_id__in=workspaces)),
        }
    ws = subject.workspace
    return {
        "consent_records": _consent_rows(ConsentRecord.objects.filter(workspace=ws)),
        "invoices": _invoice_rows(Invoice.objects.filter(workspace=ws)),
    }


def _consents() -> models.QuerySet:
    # Consent records are immutable evidence; pseudonymizing who agreed is the one
    # change allowed (GDPR erasure), so it bypasses the guard deliberately.
    return models.QuerySet(ConsentRecord)


def _delete_exports(jobs) -> None:
    """Export files hold personal data: they go with the person or workspace."""
    for job in jobs:
        if job.file:
            job.file.delete(save=False)
        job.delete()


def erase_user(user, pseudonym: str) -> None:
    _consents().filter(user=user).update(
        user_email=f"{pseudonym}@deleted.invalid", ip_address=None, user_agent=""
    )
    _delete_exports(ExportJob.objects.filter(requested_by=user))


def erase_workspace(workspace, pseudonym: str) -> None:
    for user_id in (
        _consents().filter(workspace=workspace).values_list("user_id", flat=True).distinct()
    ):
        _consents().filter(workspace=workspace, user_id=user_id).update(
            user_email=f"user-{user_id or 0}@pseudonymized.invalid",
            ip_address=None,
            user_agent="",
        )
    _consents().filter(workspace=workspace).update(workspace_name=pseudonym)
    BillingNotice.objects.filter(workspace=workspace).delete()
    # Who to bill next time: there is no next time. Issued invoices keep their
    # own snapshot of the customer, as the law requires.
    BillingDetails.objects.filter(workspace=workspace).delete()
    _delete_exports(ExportJob.objects.filter(workspace=workspace))
    Subscription.objects.filter(workspace=workspace).update(checkout_url="", checkout_session_id="")
    _pseudonymize_stripe_customer(workspace, pseudonym)


def _pseudonymize_stripe_customer(workspace, pseudonym: str) -> None:
    """The customer at Stripe loses its name, email, phone and address (issued
    invoices keep Stripe's own snapshot). A failure aborts the erasure, which the
    beat task retries; a customer Stripe no longer has is nothing to do."""
    sub = Subscription.objects.filter(workspace=workspace).first()
    if sub is None or not sub.stripe_customer_id or not stripe_api.is_configured():
        return
    try:
        stripe_api.client().v1.customers.update(
            sub.stripe_customer_id,
            {"name": pseudonym, "email": "", "phone": "", "description": "", "address": ""},
        )
    except stripe.InvalidRequestError as exc:
        if getattr(exc, "http_status", None) != 404:
            raise stripe_api.StripeFailed() from exc
    except stripe.StripeError as exc:
        raise stripe_api.StripeFailed() from exc


def purge_retained(workspace) -> None:
    _consents().filter(workspace=workspace).delete()
    CreditNote.objects.filter(workspace=workspace).delete()
    Invoice.objects.filter(workspace=workspace).delete()
    OverageReport.objects.filter(workspace=workspace).delete()
    Subscription.objects.filter(workspace=workspace).delete()


# --- closing the workspace: the subscription ------------------------------------------


def describe_closure(workspace) -> list[str]:
    sub = selectors.subscription(workspace)
    if sub is None or not sub.is_paid or sub.tier is None:
        return ["This workspace is on the free plan: nothing will be charged."]
    tier, end = sub.tier, sub.current_period_end
    usage = selectors.period_usage(workspace)
    overage = selectors.overage_estimate(usage) if tier.is_metered else None
    fee = format_money(tier.monthly_price, tier.currency)
    lines = [
        f"At the end of the period: the {tier.name} plan ({fee}/month, already paid) "
        f"runs until {end:%Y-%m-%d} and is not renewed; nothing more is charged for the plan."
    ]
    now_line = (
        "Now, with a final invoice: the subscription ends today; the unused part "
        f"of this period's {fee} is not refunded"
    )
    if overage:
        amount = format_money(overage, tier.currency)
        lines[0] += f" Overage used until then is billed on the last invoice (so far {amount})."
        now_line += f", and the final invoice bills the overage used so far: {amount}."
    else:
        now_line += "; the final invoice is for 0 (no overage used)."
    return [*lines, now_line]


def close_subscription(workspace, *, cancel_now: bool) -> None:
    sub = subscription_row(workspace)
    if not sub.is_paid:
        return
    if not cancel_now:
        subscription_cancel(workspace=workspace, at_period_end=True)
        return
    with transaction.atomic():
        sub = subscription_row(workspace, lock=True)
        try:
            stripe_sub = stripe_api.client().v1.subscriptions.cancel(
                sub.stripe_subscription_id,
                {"invoice_now": True, "prorate": False},
                {"idempotency_key": f"tollgate-close-{sub.stripe_subscription_id}"},
            )
        except stripe.StripeError as exc:
            logger.warning("stripe cancel failed: %s", exc.__class__.__name__)
            raise stripe_api.StripeFailed() from exc
        _apply(sub, stripe_sub)
        sub.save()


def reopen_subscription(workspace) -> None:
    """Undo within the grace period: a subscription set to end at the period's
    end continues; one already cancelled stays cancelled (the workspace is on Free)."""
    sub = subscription_row(workspace)
    if sub.is_paid and sub.cancel_at_period_end:
        subscription_cancel(workspace=workspace, at_period_end=False)


def register() -> None:
    privacy.register(
        privacy.DataOwner(
            label="billing",
            models=(
                "billing.Subscription",
                "billing.ConsentRecord",
                "billing.Invoice",
                "billing.OverageReport",
                "billing.BillingNotice",
                "billing.CreditNote",
                "billing.BillingDetails",
                "billing.ExportJob",
                "billing.DunningState",  # no person in it; goes with the subscription
            ),
            kept=(
                "billing.Subscription",
                "billing.ConsentRecord",
                "billing.Invoice",
                "billing.CreditNote",
                "billing.OverageReport",
                "billing.DunningState",
            ),
            export=export,
            erase_user=erase_user,
            erase_workspace=erase_workspace,
            purge_retained=purge_retained,
        )
    )
    privacy.register_closure(
        privacy.ClosureHooks(
            describe=describe_closure, close=close_subscription, reopen=reopen_subscription
        )
    )

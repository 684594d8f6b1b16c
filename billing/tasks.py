"""Thin Celery tasks: take primary keys, call a service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from accounts.models import Workspace


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=8, acks_late=True)
def process_stripe_event(event_pk: int) -> None:
    from billing.services.webhooks import event_process

    event_process(event_pk=event_pk)


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=8)
def send_overage_report(report_pk: int) -> None:
    from billing.services.overage import overage_report_send

    overage_report_send(report_pk=report_pk)


@shared_task
def send_pending_overage_reports() -> int:
    """Beat: resend what a crashed worker or a Stripe outage left in the outbox."""
    from billing.services.overage import overage_reports_resend

    return overage_reports_resend()


@shared_task
def finish_usage_hooks() -> int:
    """Beat: overage reports and usage alerts a crash kept from following
    their charge (the hook runs after the charge commits)."""
    from billing.services.usage_hooks import finish_interrupted_hooks

    return finish_interrupted_hooks()


@shared_task
def send_usage_alert(workspace_id: int, threshold: int, period_start: str) -> None:
    from billing.selectors import period_usage
    from billing.services.notifications import notify_usage_alert

    workspace = Workspace.objects.get(pk=workspace_id)
    usage = period_usage(workspace)
    if usage.limits.period_start != dt.datetime.fromisoformat(period_start):
        return  # the period rolled over before the alert went out
    notify_usage_alert(workspace=workspace, threshold=threshold, usage=usage)


@shared_task
def refresh_due_subscriptions() -> int:
    """Beat: re-fetch subscriptions whose period ended (in case a webhook was lost)."""
    from billing.services.subscriptions import subscriptions_refresh_due

    return subscriptions_refresh_due()


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=8, acks_late=True)
def archive_invoice_pdf(invoice_pk: int) -> None:
    from billing.services.invoice_documents import invoice_pdf_archive

    invoice_pdf_archive(invoice_pk=invoice_pk)


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=8, acks_late=True)
def send_invoice_email(invoice_pk: int, kind: str) -> None:
    from billing.services.invoice_documents import invoice_email_send

    invoice_email_send(invoice_pk=invoice_pk, kind=kind)


@shared_task
def requeue_unprocessed_events() -> int:
    """Beat: the webhook outbox sweeper (stored events a lost enqueue left behind)."""
    from billing.services.webhooks import events_requeue_unprocessed

    return events_requeue_unprocessed()


@shared_task
def resync_invoices() -> int:
    """Beat (nightly): re-fetch invoices and credit notes, repair drift, report it."""
    from billing.services.invoices import invoices_resync

    return invoices_resync().repaired


@shared_task(acks_late=True)
def run_export(job_id: str) -> None:
    """Stream one export job into its file (progress on the row)."""
    from billing.services.exports import export_run

    export_run(job_id=job_id)


@shared_task
def delete_expired_exports() -> int:
    """Beat: delete export files past their expiry (the links die with them)."""
    from billing.services.exports import exports_delete_expired

    return exports_delete_expired()


@shared_task
def build_monthly_close_pack() -> str:
    """Beat (the 1st of each month): queue the close pack of the month that ended."""
    from billing.services.exports import close_pack_last_month

    return str(close_pack_last_month().pk)


# --- operator economics: dunning, reconciliation, the upstream backstop ---------------


@shared_task
def send_dunning_email(workspace_id: int, kind: str) -> int:
    from billing.services.dunning_emails import send_dunning_email as send

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    return send(workspace=workspace, kind=kind) if workspace else 0


@shared_task
def send_dunning_reminders() -> int:
    """Beat (hourly): one reminder per past_due episode after N days."""
    from billing.services.dunning import reminders_due

    return reminders_due()


@shared_task(autoretry_for=(Exception,), retry_backoff=60, retry_backoff_max=3600, max_retries=6)
def reconcile_upstream(day: str | None = None) -> int | None:
    """Beat (nightly): compare the previous UTC day (or `day`, ISO) with the
    upstream organization's usage and costs. Retried with backoff on failure."""
    from billing.services.reconciliation import reconcile_day, yesterday

    run = reconcile_day(day=dt.date.fromisoformat(day) if day else yesterday())
    return run.pk if run else None


@shared_task
def check_upstream_budget() -> str:
    """Beat (every 5 min): the month's ledger cost against the operator's budget."""
    from billing.services.backstop import budget_check

    return budget_check()

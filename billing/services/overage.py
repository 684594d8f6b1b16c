"""Send the metered-overage outbox to Stripe as Billing Meter events. The usage
event's id is the meter event's `identifier`, so Stripe drops a resend."""

from __future__ import annotations

import logging
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import transaction

from billing import stripe_api
from billing.models import OverageReport
from config import clock

logger = logging.getLogger(__name__)


def overage_report_send(*, report_pk: int) -> OverageReport:
    with transaction.atomic():
        report = OverageReport.objects.select_for_update().get(pk=report_pk)
        if report.sent_at is not None:
            return report
        report.attempts += 1
        try:
            stripe_api.client().v1.billing.meter_events.create(
                {
                    "event_name": settings.BILLING_OVERAGE_METER_EVENT,
                    "identifier": report.identifier,
                    "timestamp": int(report.created_at.timestamp()),
                    "payload": {
                        "stripe_customer_id": report.stripe_customer_id,
                        "value": str(report.tokens),
                    },
                },
                {"idempotency_key": f"tollgate-{report.identifier}"},
            )
        except stripe.StripeError as exc:
            report.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            report.save(update_fields=["attempts", "last_error"])
            raise
        report.sent_at = clock.now()
        report.last_error = ""
        report.save(update_fields=["attempts", "sent_at", "last_error"])
    return report


def overage_reports_resend(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    cutoff = clock.now() - older_than
    pending = OverageReport.objects.filter(sent_at__isnull=True, created_at__lt=cutoff)
    sent = 0
    for pk in pending.values_list("pk", flat=True)[:500]:
        try:
            overage_report_send(report_pk=pk)
            sent += 1
        except stripe.StripeError:
            logger.warning("overage report %s not sent yet", pk)
    return sent

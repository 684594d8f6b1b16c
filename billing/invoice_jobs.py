"""Enqueue the invoicing work after the current transaction commits. Services
call these instead of importing `billing.tasks` (services never import tasks);
the tasks are looked up here, at call time."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def _later(task_name: str, *args) -> None:
    def send() -> None:
        from billing import tasks

        getattr(tasks, task_name).delay(*args)

    # robust: a broker outage must not fail the request; the beat sweepers and
    # Stripe's resends bring the work back (see billing.tasks).
    transaction.on_commit(send, robust=True)


def archive_pdf_later(invoice_pk: int) -> None:
    _later("archive_invoice_pdf", invoice_pk)


def invoice_email_later(invoice_pk: int, kind: str) -> None:
    _later("send_invoice_email", invoice_pk, kind)


def process_event_later(event_pk: int) -> None:
    _later("process_stripe_event", event_pk)

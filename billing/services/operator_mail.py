"""Emails to the operator (drift, upstream budget, missing admin key), each at
most once per (kind, key) — the OperatorNotice row is the 'sent' mark."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from billing.models import EconomicsSettings, OperatorNotice


def operator_recipients() -> list[str]:
    configured = EconomicsSettings.current().operator_emails
    emails = [line.strip() for line in configured.splitlines() if line.strip()]
    if emails:
        return emails
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return sorted(staff.values_list("email", flat=True))


def claim_operator_notice(*, kind: str, key: str) -> bool:
    try:
        with transaction.atomic():
            OperatorNotice.objects.create(kind=kind, key=key)
    except IntegrityError:
        return False
    return True


def notify_operators_once(*, kind: str, key: str, subject: str, body: str) -> bool:
    """Claim (kind, key) and send after commit; False if it was sent before."""
    if not claim_operator_notice(kind=kind, key=key):
        return False
    recipients = operator_recipients()
    if recipients:
        transaction.on_commit(
            lambda: send_mail(f"[Tollgate ops] {subject}", body, None, recipients),
            robust=True,
        )
    return True

"""Emails to a workspace's owners and admins (text + HTML)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Membership, Workspace
from accounts.notifications import EmailKind, wanted_recipients
from accounts.roles import Perm
from billing.models import Invoice


def billing_managers(workspace: Workspace, kind: str = EmailKind.TRANSACTIONAL) -> list[str]:
    """Owners' and admins' addresses, of those who want this kind of email."""
    members = Membership.objects.for_workspace(workspace).select_related("user")
    managers = [m.user for m in members if m.can(Perm.MANAGE_BILLING)]
    return wanted_recipients(managers, kind)


def _send(*, workspace: Workspace, kind: str, subject: str, template: str, context: dict) -> int:
    recipients = billing_managers(workspace, kind)
    if not recipients:
        return 0
    context = {
        "workspace": workspace,
        "site_url": settings.SITE_URL.rstrip("/"),
        "billing_url": settings.SITE_URL.rstrip("/") + reverse("billing:overview"),
        **context,
    }
    text = render_to_string(f"billing/email/{template}.txt", context)
    html = render_to_string(f"billing/email/{template}.html", context)
    message = EmailMultiAlternatives(subject=f"[Tollgate] {subject}", body=text, to=recipients)
    message.attach_alternative(html, "text/html")
    return message.send()


def notify_usage_alert(*, workspace: Workspace, threshold: int, usage) -> int:
    limits = usage.limits
    exhausted = threshold >= 100 and limits.overage_policy == "stop"
    upgrade_url = settings.SITE_URL.rstrip("/") + limits.upgrade_url
    if exhausted and usage.used < limits.included_tokens:
        # Refused before the last token: one request didn't fit in what was left.
        subject = (
            f"{workspace.name} is out of tokens for its next request — upgrade needs your consent"
        )
    elif exhausted:
        subject = f"{workspace.name} has used all included tokens — upgrade needs your consent"
    else:
        subject = f"{workspace.name} has used {threshold}% of its included tokens"
    return _send(
        workspace=workspace,
        kind=EmailKind.USAGE_ALERTS,
        subject=subject,
        template="quota_exhausted" if exhausted else "usage_alert",
        context={
            "threshold": threshold,
            "usage": usage,
            "limits": limits,
            "upgrade_url": upgrade_url,
        },
    )


def notify_payment_failed(*, invoice: Invoice) -> int:
    return _send(
        workspace=invoice.workspace,
        # Action needed to keep the service: not an optional invoice/receipt mail.
        kind=EmailKind.TRANSACTIONAL,
        subject="A payment failed",
        template="payment_failed",
        context={"invoice": invoice},
    )

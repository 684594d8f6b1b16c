"""Dunning emails to the people who can act on a payment: owners, admins and
finance members (text + HTML), each with the link to pay."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Membership, Workspace
from accounts.roles import Perm
from billing.models import Invoice, Subscription

SUBJECTS = {
    "payment_failed": "Payment failed for {name} — please update your payment method",
    "reminder": "Reminder: the payment for {name} is still overdue",
    "payment_overdue": "AI features for {name} are paused until the overdue payment is made",
}


def dunning_recipients(workspace: Workspace) -> list[str]:
    members = Membership.objects.for_workspace(workspace).select_related("user")
    return sorted(
        m.user.email
        for m in members
        if m.user.is_active and (m.can(Perm.MANAGE_BILLING) or m.can(Perm.VIEW_BILLING))
    )


def send_dunning_email(*, workspace: Workspace, kind: str) -> int:
    recipients = dunning_recipients(workspace)
    if not recipients or kind not in SUBJECTS:
        return 0
    site = settings.SITE_URL.rstrip("/")
    invoice = (
        Invoice.objects.for_workspace(workspace)
        .filter(status__in=("open", "uncollectible"))
        .order_by("-created_at")
        .first()
    )
    sub = Subscription.objects.for_workspace(workspace).first()
    context = {
        "workspace": workspace,
        "kind": kind,
        "invoice": invoice,
        "status": sub.status if sub else "",
        # The billing page's "Pay in the Billing Portal" button opens a fresh
        # Portal session (Portal links expire, so the email can't carry one).
        "portal_url": site + reverse("billing:overview") + "#pay",
        "billing_url": site + reverse("billing:overview"),
    }
    text = render_to_string("billing/email/dunning.txt", context)
    html = render_to_string("billing/email/dunning.html", context)
    subject = "[Tollgate] " + SUBJECTS[kind].format(name=workspace.name)
    message = EmailMultiAlternatives(subject=subject, body=text, to=recipients)
    message.attach_alternative(html, "text/html")
    return message.send()

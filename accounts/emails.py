"""Emails accounts sends itself (allauth sends verification and reset mails
through the same templates folder). Every mail goes out as text + HTML."""

from __future__ import annotations

import logging
from html import unescape
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.notifications import wants_email
from config.errors import ApiError

if TYPE_CHECKING:
    from accounts.models import Invitation, User

logger = logging.getLogger(__name__)


class EmailNotSent(ApiError):
    status, code = 503, "email_not_sent"
    default_message = "We couldn't send the email just now. Try again in a moment."


def send_templated(*, prefix: str, to: str, context: dict) -> None:
    context = {"site_url": settings.SITE_URL, **context}
    # Plain text: never HTML-escaped (a workspace called "Tom & Jerry's").
    subject = unescape(" ".join(render_to_string(f"{prefix}_subject.txt", context).split()))
    text = render_to_string(f"{prefix}_message.txt", context).strip()
    html = render_to_string(f"{prefix}_message.html", context)
    message = EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(html, "text/html")
    message.send()


def send_to_person(
    *, user: User, kind: str, prefix: str, context: dict, to: str | None = None
) -> bool:
    """Send a templated mail to a person if they want this kind (see
    accounts.notifications); `to` overrides the address (e.g. the one a deleted
    account had). Returns whether it was sent."""
    if not wants_email(user, kind):
        return False
    send_templated(prefix=prefix, to=to or user.email, context={"user": user, **context})
    return True


def invitation_url(token: str, link_base: str | None = None) -> str:
    base = (link_base or settings.SITE_URL).rstrip("/")
    return base + reverse("accounts:invitation", kwargs={"token": token})


def send_invitation(*, invitation: Invitation, token: str, link_base: str | None = None) -> None:
    """Transactional (an admin asked for it): not subject to preferences. Runs
    after the invitation is committed: a mail server failure leaves a pending
    invitation that can be resent, and says so."""
    try:
        _send_invitation(invitation=invitation, token=token, link_base=link_base)
    except Exception as exc:
        logger.exception("invitation email to workspace %s failed", invitation.workspace_id)
        raise EmailNotSent(
            f"The invitation for {invitation.email} is saved, but the email could not be "
            "sent just now. Use “Resend” in a moment."
        ) from exc


def _send_invitation(*, invitation: Invitation, token: str, link_base: str | None) -> None:
    inviter = invitation.invited_by
    send_templated(
        prefix="accounts/email/invitation",
        to=invitation.email,
        context={
            "invitation": invitation,
            "workspace_name": invitation.workspace.name,
            "inviter": inviter.display_name if inviter else "A Tollgate operator",
            "inviter_email": inviter.email if inviter else "",
            "role": invitation.get_role_display(),
            "accept_url": invitation_url(token, link_base),
            "expires_at": invitation.expires_at,
        },
    )


def send_export_ready(*, user: User, subject) -> None:
    """The link goes to the signed-in page holding the download (the file's own
    link is signed and short-lived, so it is not put in an email)."""
    from accounts.models_privacy import EmailKind

    try:
        send_to_person(
            user=user,
            kind=EmailKind.TRANSACTIONAL,
            prefix="accounts/email/export_ready",
            context={
                "scope": subject.kind,
                "page_url": settings.SITE_URL.rstrip("/")
                + reverse(
                    "accounts:workspace_privacy"
                    if subject.kind == "workspace"
                    else "accounts:privacy_settings"
                ),
            },
        )
    except Exception:  # the export is done; the page shows it even if the mail fails
        logger.exception("export-ready email failed for user %s", user.pk)


def send_workspace_suspended(*, workspace, to: str) -> None:
    base = settings.SITE_URL.rstrip("/")
    send_templated(
        prefix="accounts/email/workspace_suspended",
        to=to,
        context={
            "workspace_name": workspace.name,
            "reason": workspace.suspended_reason,
            "billing_url": base + reverse("billing:overview"),
            "support_email": settings.TOLLGATE_SUPPORT_EMAIL,
        },
    )

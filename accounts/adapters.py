"""allauth wiring: a workspace at sign-up (unless the person came through an
invitation, where they join the inviting workspace instead), and the way back
to a pending invitation after signing in."""

from __future__ import annotations

import html

from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse

from accounts.selectors import invitation_by_token
from accounts.services import default_workspace_name, workspace_create

SESSION_INVITATION_KEY = "tollgate_invitation_token"


def pending_invitation(request):
    """The open invitation whose link this browser followed, if any."""
    token = request.session.get(SESSION_INVITATION_KEY) if request is not None else None
    invitation = invitation_by_token(token=token) if token else None
    if invitation is None or not invitation.is_open:
        return None, None
    return invitation, token


class AccountAdapter(DefaultAccountAdapter):
    def format_email_subject(self, subject):
        # Subjects are plain text: undo the HTML escaping of the template
        # ("Tom &amp; Jerry&#x27;s" → "Tom & Jerry's").
        return super().format_email_subject(html.unescape(subject))

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit and not user.memberships.exists():
            invitation, _ = pending_invitation(request)
            invited_here = invitation is not None and invitation.email.lower() == user.email.lower()
            if not invited_here:
                workspace_create(name=default_workspace_name(user), owner=user)
        return user

    def get_login_redirect_url(self, request):
        return _invitation_url(request) or super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request):
        return _invitation_url(request) or super().get_signup_redirect_url(request)


def _invitation_url(request) -> str | None:
    invitation, token = pending_invitation(request)
    if invitation is None:
        return None
    return reverse("accounts:invitation", kwargs={"token": token})

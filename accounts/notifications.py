"""The one question every email sender asks: does this person want this kind
of email? Security and transactional mails (password, MFA, new login, account
deletion, invitations) always go; usage alerts, invoices/receipts and product
news follow the person's preferences (accounts.models_privacy).

    from accounts.notifications import EmailKind, wanted_recipients
    to = wanted_recipients(users, EmailKind.INVOICES)
"""

from __future__ import annotations

from collections.abc import Iterable

from accounts.models import User
from accounts.models_privacy import OPTIONAL_KINDS, EmailKind, NotificationPreference

__all__ = ["EmailKind", "preferences_for", "wanted_recipients", "wants_email"]


def preferences_for(user: User) -> NotificationPreference:
    """The person's preferences (unsaved defaults when they never changed them)."""
    pref = NotificationPreference.objects.filter(user=user).first()
    return pref or NotificationPreference(user=user)


def wants_email(user: User, kind: str) -> bool:
    if kind not in OPTIONAL_KINDS:
        return True  # security and transactional mails can't be turned off
    return user.is_active and bool(getattr(preferences_for(user), kind))


def wanted_recipients(users: Iterable[User], kind: str) -> list[str]:
    """Email addresses of those of `users` who want `kind` (sorted, unique)."""
    users = list(users)
    if kind not in OPTIONAL_KINDS:
        return sorted({u.email for u in users if u.is_active})
    prefs = {
        p.user_id: p for p in NotificationPreference.objects.filter(user__in=[u.pk for u in users])
    }
    return sorted(
        {
            u.email
            for u in users
            if u.is_active and (u.pk not in prefs or getattr(prefs[u.pk], kind))
        }
    )

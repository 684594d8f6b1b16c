"""Demo back-office finance user for the run command (idempotent): a staff
user in the read-only Finance group, for the finance console."""

from __future__ import annotations

import secrets

FINANCE_EMAIL = "finance@tollgate.local"


def seed_finance_staff() -> list[str]:
    from allauth.account.models import EmailAddress

    from accounts.models import User
    from billing.backoffice import ensure_finance_group

    group = ensure_finance_group()
    user = User.objects.filter(email=FINANCE_EMAIL).first()
    if user is not None:
        user.groups.add(group)
        return [f"  Finance console login {FINANCE_EMAIL} exists: /backoffice/finance/"]
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(FINANCE_EMAIL, password, is_staff=True)
    user.groups.add(group)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return [
        f"  Finance console login (shown once): {FINANCE_EMAIL} / {password}"
        "  → /backoffice/finance/ (read-only, all workspaces)"
    ]

"""Accounts' own entries in the personal-data registry (registered in ready()).
The erasure of these rows is done by accounts.services_privacy itself (it
orders the steps); the entries say what is exported and what each model is."""

from __future__ import annotations

from accounts import privacy
from accounts.models import AuditEvent, Invitation, Membership
from accounts.privacy import Rows, Subject


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _profile(user) -> Rows:
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator

    from accounts.notifications import preferences_for

    pref = preferences_for(user)
    return [
        {
            "email": user.email,
            "name": user.name,
            "date_joined": _iso(user.date_joined),
            "last_login": _iso(user.last_login),
            "email_addresses": [
                {"email": e.email, "verified": e.verified, "primary": e.primary}
                for e in EmailAddress.objects.filter(user=user)
            ],
            # Which second factors exist; never their secrets.
            "mfa": sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True)),
            "email_preferences": {
                "usage_alerts": pref.usage_alerts,
                "invoices": pref.invoices,
                "product": pref.product,
            },
        }
    ]


def _membership_rows(memberships) -> Rows:
    return [
        {
            "workspace_id": m.workspace_id,
            "workspace": m.workspace.name,
            "person": m.user.email,
            "role": m.role,
            "joined_at": _iso(m.created_at),
        }
        for m in memberships.select_related("workspace", "user")
    ]


def _audit_rows(events) -> Rows:
    return [
        {
            "time": _iso(e.created_at),
            "workspace_id": e.workspace_id,
            "actor": e.actor.email if e.actor else None,
            "action": e.action,
            "target": e.target,
            "data": e.data,
        }
        for e in events.select_related("actor")
    ]


def export(subject: Subject) -> dict[str, Rows]:
    if subject.user is not None:
        user = subject.user
        return {
            "profile": _profile(user),
            "memberships": _membership_rows(Membership.objects.for_user(user)),
            "audit_log": _audit_rows(AuditEvent.objects.filter(actor=user)),
        }
    workspace = subject.workspace
    return {
        "workspace": [
            {"id": workspace.pk, "name": workspace.name, "created_at": _iso(workspace.created_at)}
        ],
        "memberships": _membership_rows(Membership.objects.for_workspace(workspace)),
        "invitations": [
            {
                "email": i.email,
                "role": i.role,
                "status": i.status,
                "created_at": _iso(i.created_at),
            }
            for i in Invitation.objects.for_workspace(workspace)
        ],
        "audit_log": _audit_rows(AuditEvent.objects.for_workspace(workspace)),
    }


def register() -> None:
    privacy.register(
        privacy.DataOwner(
            label="accounts",
            models=(
                "accounts.User",
                "accounts.Workspace",
                "accounts.Membership",
                "accounts.Invitation",
                "accounts.AuditEvent",
                "accounts.NotificationPreference",
                "accounts.WorkspacePolicy",
                "account.EmailAddress",
                "mfa.Authenticator",
                "usersessions.UserSession",
                "admin.LogEntry",
            ),
            # The person's row stays as a nameless tombstone (the ledger points at
            # it); the workspace row likewise; the audit log is pseudonymized.
            kept=("accounts.User", "accounts.Workspace", "accounts.AuditEvent"),
            export=export,
        )
    )

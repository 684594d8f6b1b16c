"""Reads for accounts. Reads take the tenant or the person explicitly."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import AuditEvent, Invitation, Membership, User, Workspace, hash_token
from config import clock

SESSION_WORKSPACE_KEY = "tollgate_workspace_id"


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    # The policy rides along: the MFA middleware reads it on every page.
    return (
        Membership.objects.for_user(user)
        .select_related("workspace", "workspace__policy")
        .order_by("workspace__name", "workspace_id")
    )


def membership_for(*, user: User, workspace_id: int | None) -> Membership | None:
    """The user's membership in that workspace, or their first one."""
    memberships = memberships_for_user(user=user)
    if workspace_id is not None:
        chosen = memberships.filter(workspace_id=workspace_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def workspace_members(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.for_workspace(workspace).select_related("user").order_by("user__email")
    )


def workspace_invitations(*, workspace: Workspace) -> QuerySet[Invitation]:
    return Invitation.objects.for_workspace(workspace).select_related("invited_by")


def pending_invitations(*, workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked (expired ones included, so they
    can be resent)."""
    return workspace_invitations(workspace=workspace).filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )


def invitation_by_token(*, token: str) -> Invitation | None:
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(token_hash=hash_token(token))
        .first()
    )


def invitations_for_user(*, user: User) -> QuerySet[Invitation]:
    """Open invitations addressed to one of the user's verified emails, from
    workspaces they are not in yet (shown on the dashboard)."""
    from allauth.account.models import EmailAddress

    emails = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    lowered = [e.lower() for e in emails]
    return (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(
            email__in=lowered,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=clock.now(),
        )
        .exclude(workspace__memberships__user=user)
        .order_by("-created_at")
    )


def workspace_activity(*, workspace: Workspace, limit: int = 20) -> list[AuditEvent]:
    return list(AuditEvent.objects.for_workspace(workspace).select_related("actor")[:limit])


def workspace_owner_count(*, workspace: Workspace) -> int:
    return Membership.objects.for_workspace(workspace).filter(role="owner").count()

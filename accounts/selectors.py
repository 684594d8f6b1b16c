"""Reads for accounts. Reads take the tenant or the person explicitly."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Invitation, Membership, User, Workspace

SESSION_WORKSPACE_KEY = "tollgate_workspace_id"


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.for_user(user)
        .select_related("workspace")
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

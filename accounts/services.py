"""Writes for accounts: one function per use case, keyword-only, atomic."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Membership, User, Workspace
from accounts.roles import Role


@transaction.atomic
def workspace_create(*, name: str, owner: User) -> Workspace:
    workspace = Workspace.objects.create(name=name.strip() or "My workspace", created_by=owner)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def default_workspace_name(user: User) -> str:
    return f"{user.display_name}'s workspace"

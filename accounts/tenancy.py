"""The tenant wall (STYLE.md 2-3). Every model that belongs to a workspace uses
`WorkspaceScopedManager`, whose querysets are read through `.for_workspace(ws)`;
views get the workspace once per request from `request.workspace`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from accounts.models import Workspace


class WorkspaceQuerySet(models.QuerySet):
    def for_workspace(self, workspace: Workspace) -> WorkspaceQuerySet:
        if workspace is None:
            raise ValueError("for_workspace() needs a workspace: refusing an unscoped read")
        return self.filter(workspace=workspace)


WorkspaceScopedManager = models.Manager.from_queryset(WorkspaceQuerySet)

"""The tenant wall (STYLE.md 2-3). Every model that belongs to a workspace uses
`WorkspaceScopedManager`, whose querysets are read through `.for_workspace(ws)`;
views get the workspace once per request from `request.workspace`."""

from __future__ import annotations

from django.db import models


class WorkspaceQuerySet(models.QuerySet):
    # The workspace is any model instance (accounts.models.Workspace): the wall
    # stands below the models that use it and names none of them.
    def for_workspace(self, workspace: models.Model) -> WorkspaceQuerySet:
        if workspace is None:
            raise ValueError("for_workspace() needs a workspace: refusing an unscoped read")
        return self.filter(workspace=workspace)


WorkspaceScopedManager = models.Manager.from_queryset(WorkspaceQuerySet)

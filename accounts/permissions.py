"""DRF permission that resolves the tenant once per API request (STYLE.md 3).

The workspace comes from the API key when one authenticated the request
(`request.auth` has a `.workspace`), otherwise from the session's current
workspace. Views then read `request.workspace` / `request.membership`."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.middleware import owner_may_pass_suspension
from accounts.models import Membership
from config.errors import AuthenticationRequired, Forbidden, WorkspaceSuspended


def resolve_api_workspace(request) -> None:
    key = request.auth
    if key is not None and hasattr(key, "workspace"):
        request.workspace = key.workspace
        request.membership = getattr(key, "membership", None) or (
            Membership.objects.filter(workspace=key.workspace, user=request.user)
            .select_related("workspace")
            .first()
        )
    else:
        request.workspace = getattr(request._request, "workspace", None)
        request.membership = getattr(request._request, "membership", None)


class IsWorkspaceMember(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise AuthenticationRequired()
        resolve_api_workspace(request)
        if request.user.is_suspended:
            raise WorkspaceSuspended(request.user.suspended_reason or "Your account is suspended.")
        if request.workspace is None or request.membership is None:
            raise Forbidden("You are not a member of any workspace.")
        if request.workspace.is_suspended and not owner_may_pass_suspension(request):
            raise WorkspaceSuspended(
                request.workspace.suspended_reason or "This workspace is suspended."
            )
        required = getattr(view, "required_perm", None)
        if required and not request.membership.can(required):
            raise Forbidden("Your role in this workspace does not allow this.")
        return True

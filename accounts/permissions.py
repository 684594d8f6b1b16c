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


def ensure_member_access(
    *, user, workspace, membership, required: str | None = None, owner_may_pass=lambda: False
) -> None:
    """The API's refusals for a caller, in order: a suspended person, no
    membership, a suspended workspace (unless `owner_may_pass()`), a role
    without `required`. Also used by the meter when it re-checks a key."""
    if user.is_suspended:
        raise WorkspaceSuspended(user.suspended_reason or "Your account is suspended.")
    if workspace is None or membership is None:
        raise Forbidden("You are not a member of any workspace.")
    if workspace.is_suspended and not owner_may_pass():
        raise WorkspaceSuspended(workspace.suspended_reason or "This workspace is suspended.")
    if required and not membership.can(required):
        raise Forbidden("Your role in this workspace does not allow this.")


class IsWorkspaceMember(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise AuthenticationRequired()
        resolve_api_workspace(request)
        ensure_member_access(
            user=request.user,
            workspace=request.workspace,
            membership=request.membership,
            required=getattr(view, "required_perm", None),
            owner_may_pass=lambda: owner_may_pass_suspension(request),
        )
        return True

"""Resolve the signed-in user's current workspace once per request and wall
off suspended users and workspaces. API-key requests resolve their workspace
from the key instead (accounts.permissions.IsWorkspaceMember)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from accounts.roles import Perm
from accounts.selectors import SESSION_WORKSPACE_KEY, membership_for
from config.errors import WorkspaceSuspended, error_response, is_api_request

SUSPENSION_EXEMPT_PREFIXES = ("/accounts/logout/", "/static/", "/healthz", "/readyz", "/admin/")
# When only the current workspace is suspended, its members may still switch to
# another workspace they belong to: nothing of the suspended one is reachable.
WORKSPACE_SWITCH_PATHS = ("/workspaces/", "/workspaces/switch/")
# A suspended workspace can still pay and see its invoices (DESIGN.md): billing
# pages stay open to those of its members whose role sees billing.
BILLING_PREFIXES = ("/billing/",)


def suspension_reason(request: HttpRequest) -> str | None:
    user = request.user
    if getattr(user, "is_suspended", False):
        return user.suspended_reason or "Your account is suspended."
    workspace = getattr(request, "workspace", None)
    if workspace is not None and workspace.is_suspended:
        return workspace.suspended_reason or f"The workspace “{workspace.name}” is suspended."
    return None


def owner_may_pass_suspension(request: HttpRequest) -> bool:
    """A suspended workspace's owner can still reach billing (to pay), invoices,
    exports and their data (DESIGN.md): paths in TOLLGATE_SUSPENDED_OWNER_PATHS.
    A suspended *person* gets nothing."""
    membership = getattr(request, "membership", None)
    return (
        membership is not None
        and membership.role == "owner"
        and not getattr(request.user, "is_suspended", False)
        and request.path.startswith(tuple(settings.TOLLGATE_SUSPENDED_OWNER_PATHS))
    )


def suspended_response(request: HttpRequest, reason: str):
    if is_api_request(request):
        return error_response(WorkspaceSuspended(reason))
    may_switch = (
        not request.user.is_suspended
        and request.user.memberships.filter(workspace__is_suspended=False).exists()
    )
    context = {"reason": reason, "may_switch": may_switch, "may_bill": _may_bill(request)}
    return render(request, "accounts/suspended.html", context, status=403)


def _may_bill(request: HttpRequest) -> bool:
    """Only the workspace is suspended (not the person) and their role sees billing."""
    membership = getattr(request, "membership", None)
    return (
        not request.user.is_suspended
        and membership is not None
        and membership.can(Perm.VIEW_BILLING)
    )


class CurrentWorkspaceMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest):
        request.workspace = None
        request.membership = None
        if not request.user.is_authenticated:
            return None
        membership = membership_for(
            user=request.user, workspace_id=request.session.get(SESSION_WORKSPACE_KEY)
        )
        if membership is not None:
            request.membership = membership
            request.workspace = membership.workspace
        if request.path.startswith(SUSPENSION_EXEMPT_PREFIXES):
            return None
        if not request.user.is_suspended and request.path in WORKSPACE_SWITCH_PATHS:
            return None
        if request.path.startswith(BILLING_PREFIXES) and _may_bill(request):
            return None
        reason = suspension_reason(request)
        if reason and not owner_may_pass_suspension(request):
            return suspended_response(request, reason)
        return None

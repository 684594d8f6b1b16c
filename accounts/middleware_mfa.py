"""An owner can require two-factor authentication for every member: a member
without an authenticator is sent to enrol before anything else in that
workspace (pages redirect, session API calls get 403 `mfa_required`).
API keys are not affected: they are not a login."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect

from config.errors import Forbidden, error_response, is_api_request

# Enrolling, signing out, changing email/password and switching workspace stay open.
EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/readyz", "/metrics", "/admin/")
EXEMPT_PATHS = ("/workspaces/", "/workspaces/switch/")


class MfaRequired(Forbidden):
    code = "mfa_required"
    default_message = (
        "This workspace requires two-factor authentication. "
        "Set up an authenticator app at /accounts/2fa/ first."
    )


def workspace_requires_mfa(workspace) -> bool:
    """From the policy loaded with the membership (no query of its own)."""
    from accounts.models_privacy import WorkspacePolicy

    try:
        return workspace.policy.require_mfa
    except WorkspacePolicy.DoesNotExist:
        return False


def has_second_factor(user) -> bool:
    from allauth.mfa.models import Authenticator

    return (
        Authenticator.objects.filter(user=user)
        .exclude(type=Authenticator.Type.RECOVERY_CODES)
        .exists()
    )


class RequireMfaMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        blocked = self._must_enrol(request)
        if blocked:
            if is_api_request(request):
                return error_response(MfaRequired())
            messages.warning(
                request,
                f"“{request.workspace.name}” requires two-factor authentication. "
                "Set up an authenticator app to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)

    @staticmethod
    def _must_enrol(request: HttpRequest) -> bool:
        workspace = getattr(request, "workspace", None)
        if workspace is None or not request.user.is_authenticated:
            return False
        if request.path.startswith(EXEMPT_PREFIXES) or request.path in EXEMPT_PATHS:
            return False
        return workspace_requires_mfa(workspace) and not has_second_factor(request.user)

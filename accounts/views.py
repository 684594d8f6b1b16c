from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.selectors import SESSION_WORKSPACE_KEY, memberships_for_user, workspace_members


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    return render(request, "home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.workspace is None:
        return redirect("accounts:workspace_switch")
    return render(request, "accounts/dashboard.html")


@login_required
@require_http_methods(["GET", "POST"])
def workspace_switch(request: HttpRequest) -> HttpResponse:
    memberships = memberships_for_user(user=request.user)
    if request.method == "POST":
        chosen = memberships.filter(workspace_id=request.POST.get("workspace")).first()
        if chosen is None:
            messages.error(request, "You are not a member of that workspace.")
        else:
            request.session[SESSION_WORKSPACE_KEY] = chosen.workspace_id
            messages.success(request, f"Switched to {chosen.workspace.name}.")
            return redirect("accounts:dashboard")
    return render(request, "accounts/workspace_switch.html", {"memberships": memberships})


@login_required
def workspace_settings(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/workspace_settings.html")


@login_required
def members(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/members.html",
        {"members": workspace_members(workspace=request.workspace)},
    )

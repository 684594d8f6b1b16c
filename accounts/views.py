"""Pages for workspaces, members and invitations. Thin: read with selectors,
write with services, turn a service's ApiError into a flash message."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import ratelimits, selectors, services
from accounts.adapters import SESSION_INVITATION_KEY
from accounts.forms import (
    InvitationForm,
    ProfileForm,
    RoleForm,
    TransferOwnershipForm,
    WorkspaceNameForm,
)
from accounts.models import Invitation, Membership
from accounts.roles import ROLE_PERMISSIONS, Perm, Role
from accounts.selectors import SESSION_WORKSPACE_KEY, memberships_for_user
from config.errors import ApiError

MEMBERS_PER_PAGE = 50


def workspace_required(view):
    """Signed in and inside a workspace (else: pick or create one)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.workspace is None:
            messages.info(request, "Create a workspace or accept an invitation to get started.")
            return redirect("accounts:workspace_switch")
        return view(request, *args, **kwargs)

    return wrapper


def _link_base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _flash_error(request: HttpRequest, error: ApiError) -> None:
    messages.error(request, error.message)


def _may_send_invitation(request: HttpRequest) -> bool:
    allowed = ratelimits.allow(
        f"invitations:{request.workspace.pk}",
        limit=settings.TOLLGATE_INVITATIONS_PER_HOUR,
        period_seconds=3600,
    )
    if not allowed:
        messages.error(
            request,
            "This workspace sent a lot of invitations in the last hour. Try again a bit later.",
        )
    return allowed


# --- home & dashboard ------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    return render(request, "home.html")


@workspace_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "invitations_for_me": selectors.invitations_for_user(user=request.user),
        "member_count": selectors.workspace_members(workspace=request.workspace).count(),
    }
    return render(request, "accounts/dashboard.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, initial={"name": request.user.name})
    if request.method == "POST" and form.is_valid():
        services.user_update_profile(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


# --- workspaces ------------------------------------------------------------------


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
    context = {
        "memberships": memberships,
        "invitations_for_me": selectors.invitations_for_user(user=request.user),
    }
    return render(request, "accounts/workspace_switch.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_create(request: HttpRequest) -> HttpResponse:
    form = WorkspaceNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.workspace_create(
                name=form.cleaned_data["name"], owner=request.user
            )
        except ApiError as error:
            _flash_error(request, error)
        else:
            request.session[SESSION_WORKSPACE_KEY] = workspace.pk
            messages.success(request, f"Workspace “{workspace.name}” created. You are its owner.")
            return redirect("accounts:dashboard")
    return render(request, "accounts/workspace_create.html", {"form": form})


@workspace_required
@require_http_methods(["GET", "POST"])
def workspace_settings(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    form = WorkspaceNameForm(request.POST or None, initial={"name": request.workspace.name})
    if request.method == "POST" and form.is_valid():
        try:
            services.workspace_rename(actor=membership, name=form.cleaned_data["name"])
        except ApiError as error:
            _flash_error(request, error)
        else:
            messages.success(request, "Workspace renamed.")
            return redirect("accounts:workspace_settings")
    context = {
        "form": form,
        "can_rename": membership.can(Perm.MANAGE_WORKSPACE),
        "can_transfer": membership.can(Perm.TRANSFER_OWNERSHIP),
        # Who invited or removed whom is for the people who manage members.
        "activity": selectors.workspace_activity(workspace=request.workspace)
        if membership.can(Perm.MANAGE_MEMBERS)
        else None,
        "is_last_owner": membership.role == Role.OWNER
        and selectors.workspace_owner_count(workspace=request.workspace) <= 1,
    }
    return render(request, "accounts/workspace_settings.html", context)


@workspace_required
@require_http_methods(["GET", "POST"])
def workspace_leave(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace
    if request.method == "POST":
        try:
            services.workspace_leave(membership=request.membership)
        except ApiError as error:
            _flash_error(request, error)
            return redirect("accounts:workspace_settings")
        request.session.pop(SESSION_WORKSPACE_KEY, None)
        messages.success(request, f"You left “{workspace.name}”.")
        return redirect("accounts:workspace_switch")
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": f"Leave “{workspace.name}”?",
            "body": "You will lose access to this workspace, its usage and its API keys. "
            "An owner or admin can invite you again later.",
            "action_label": "Leave workspace",
            "cancel_url": reverse("accounts:workspace_settings"),
        },
    )


@workspace_required
@require_http_methods(["GET", "POST"])
def ownership_transfer(request: HttpRequest) -> HttpResponse:
    actor = request.membership
    if not actor.can(Perm.TRANSFER_OWNERSHIP):
        messages.error(request, "Only an owner can transfer ownership.")
        return redirect("accounts:workspace_settings")
    form = TransferOwnershipForm(request.POST or None, actor=actor)
    if request.method == "POST" and form.is_valid():
        try:
            new_owner = services.ownership_transfer(
                actor=actor, new_owner=form.cleaned_data["new_owner"]
            )
        except ApiError as error:
            _flash_error(request, error)
        else:
            messages.success(
                request, f"{new_owner.user.email} is now an owner. You are now an admin."
            )
            return redirect("accounts:members")
    return render(request, "accounts/transfer.html", {"form": form})


# --- members ---------------------------------------------------------------------


def _workspace_membership(request: HttpRequest, pk: int) -> Membership:
    """Another workspace's member is simply not there: 404."""
    return get_object_or_404(
        Membership.objects.for_workspace(request.workspace).select_related("user"), pk=pk
    )


def _workspace_invitation(request: HttpRequest, pk: int) -> Invitation:
    return get_object_or_404(Invitation.objects.for_workspace(request.workspace), pk=pk)


@workspace_required
def members(request: HttpRequest) -> HttpResponse:
    actor = request.membership
    can_manage = actor.can(Perm.MANAGE_MEMBERS)
    page = Paginator(
        selectors.workspace_members(workspace=request.workspace), MEMBERS_PER_PAGE
    ).get_page(request.GET.get("page"))
    for member in page:
        member.manageable = can_manage and _may_manage(actor, member)
    context = {
        "members": page,
        "can_manage": can_manage,
        "invite_form": InvitationForm(actor=actor),
        "role_choices": [c for c in Role.choices if actor.role == Role.OWNER or c[0] != Role.OWNER],
        "invitations": selectors.pending_invitations(workspace=request.workspace)
        if can_manage
        else [],
        "role_table": _role_table(),
    }
    return render(request, "accounts/members.html", context)


def _may_manage(actor: Membership, member: Membership) -> bool:
    """Mirror of the services' rules, to show only the controls that will work."""
    return member.pk != actor.pk and (member.role != Role.OWNER or actor.role == Role.OWNER)


def _role_table() -> list[dict]:
    return [
        {"label": perm.label, "roles": [perm in ROLE_PERMISSIONS[role] for role in Role.values]}
        for perm in Perm
    ]


@workspace_required
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _workspace_membership(request, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("accounts:members")
    try:
        updated = services.membership_change_role(
            actor=request.membership, membership=membership, role=form.cleaned_data["role"]
        )
    except ApiError as error:
        _flash_error(request, error)
    else:
        messages.success(request, f"{updated.user.email} is now {updated.get_role_display()}.")
    return redirect("accounts:members")


@workspace_required
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _workspace_membership(request, pk)
    if request.method == "POST":
        try:
            services.membership_remove(actor=request.membership, membership=membership)
        except ApiError as error:
            _flash_error(request, error)
        else:
            messages.success(request, f"{membership.user.email} was removed from the workspace.")
        return redirect("accounts:members")
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": f"Remove {membership.user.email}?",
            "body": f"They will lose access to “{request.workspace.name}” at once. "
            "Their past usage stays in the records. You can invite them again later.",
            "action_label": "Remove member",
            "cancel_url": reverse("accounts:members"),
        },
    )


# --- invitations (managing) ----------------------------------------------------------


@workspace_required
@require_POST
def invitation_create(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST, actor=request.membership)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("accounts:members")
    if not _may_send_invitation(request):
        return redirect("accounts:members")
    try:
        invitation, _ = services.invitation_create(
            actor=request.membership,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            link_base=_link_base(request),
        )
    except ApiError as error:
        _flash_error(request, error)
    else:
        messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("accounts:members")


@workspace_required
@require_POST
def invitation_resend(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _workspace_invitation(request, pk)
    if not _may_send_invitation(request):
        return redirect("accounts:members")
    try:
        services.invitation_resend(
            actor=request.membership, invitation=invitation, link_base=_link_base(request)
        )
    except ApiError as error:
        _flash_error(request, error)
    else:
        messages.success(request, f"Sent a new invitation link to {invitation.email}.")
    return redirect("accounts:members")


@workspace_required
@require_http_methods(["GET", "POST"])
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _workspace_invitation(request, pk)
    if request.method == "POST":
        try:
            services.invitation_revoke(actor=request.membership, invitation=invitation)
        except ApiError as error:
            _flash_error(request, error)
        else:
            messages.success(request, f"The invitation for {invitation.email} was revoked.")
        return redirect("accounts:members")
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": f"Revoke the invitation for {invitation.email}?",
            "body": "The link in their email will stop working. You can invite them again later.",
            "action_label": "Revoke invitation",
            "cancel_url": reverse("accounts:members"),
        },
    )


# --- invitations (accepting) -------------------------------------------------------


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the invitation email. Anyone may open it; only the invited
    address may accept it."""
    invitation = selectors.invitation_by_token(token=token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    context = {"invitation": invitation, "token": token}
    if not invitation.is_open:
        request.session.pop(SESSION_INVITATION_KEY, None)
        return render(request, "accounts/invitation_closed.html", context, status=410)
    user = request.user
    if not user.is_authenticated:
        # Remember the link through sign-up, email verification and sign-in.
        request.session[SESSION_INVITATION_KEY] = token
        context["email_taken"] = _email_has_account(invitation.email)
        return render(request, "accounts/invitation.html", context)
    context["matches"] = services.user_owns_email(user=user, email=invitation.email)
    # Came through this link before signing up or in: they were told they'd join
    # once verified, so they join now — no second "Accept" click.
    carried = request.session.get(SESSION_INVITATION_KEY) == token
    if context["matches"] and (request.method == "POST" or carried):
        return _accept(request, invitation)
    return render(request, "accounts/invitation.html", context)


def _email_has_account(email: str) -> bool:
    from accounts.models import User

    return User.objects.filter(email__iexact=email).exists()


@login_required
@require_POST
def invitation_join(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept from the dashboard: invitations to one of my verified emails."""
    invitation = get_object_or_404(selectors.invitations_for_user(user=request.user), pk=pk)
    return _accept(request, invitation)


def _accept(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    try:
        membership = services.invitation_accept(invitation=invitation, user=request.user)
    except ApiError as error:
        _flash_error(request, error)
        return redirect("accounts:workspace_switch")
    request.session.pop(SESSION_INVITATION_KEY, None)
    request.session[SESSION_WORKSPACE_KEY] = membership.workspace_id
    messages.success(
        request,
        f"Welcome to {membership.workspace.name}! You joined as {membership.get_role_display()}.",
    )
    return redirect("accounts:dashboard")

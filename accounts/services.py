"""Writes for accounts: one function per use case, keyword-only, typed, atomic.

Each use case checks who may do it (the acting membership's role, see
accounts/roles.py), keeps the workspace's invariants (a workspace always has an
owner) and writes its AuditEvent in the same transaction. Views only translate
the ApiError these raise into a flash message."""

from __future__ import annotations

from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction

from accounts import emails
from accounts.models import AuditEvent, Invitation, Membership, User, Workspace, hash_token
from accounts.roles import Perm, Role
from accounts.signals import membership_removed
from config import clock
from config.errors import Forbidden, InvalidRequest

WORKSPACE_NAME_MAX = 100


# --- helpers -------------------------------------------------------------------


def default_workspace_name(user: User) -> str:
    return f"{user.display_name}'s workspace"


def _audit(
    *, workspace: Workspace | None, actor: User | None, action: str, target: str = "", **data
) -> AuditEvent:
    return AuditEvent.objects.create(
        workspace=workspace, actor=actor, action=action, target=target, data=data
    )


def _require(actor: Membership, perm: str, message: str) -> None:
    if not actor.can(perm):
        raise Forbidden(message)


def _lock_workspace(workspace: Workspace) -> Workspace:
    """Serialize membership changes per workspace, so two concurrent demotions
    can't both see "another owner is left" and leave none."""
    return Workspace.objects.select_for_update().get(pk=workspace.pk)


def _fresh_membership(membership: Membership) -> Membership:
    try:
        return Membership.objects.select_related("user", "workspace").get(pk=membership.pk)
    except Membership.DoesNotExist:
        raise InvalidRequest("That person is no longer a member of this workspace.") from None


def _owner_count(workspace: Workspace) -> int:
    return Membership.objects.for_workspace(workspace).filter(role=Role.OWNER).count()


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidRequest("Give the workspace a name.", details={"name": ["Required."]})
    if len(name) > WORKSPACE_NAME_MAX:
        raise InvalidRequest(
            f"Workspace names are at most {WORKSPACE_NAME_MAX} characters.",
            details={"name": ["Too long."]},
        )
    return name


def _clean_role(role: str) -> str:
    if role not in Role.values:
        raise InvalidRequest("Choose one of the roles.", details={"role": ["Unknown role."]})
    return role


# --- people ------------------------------------------------------------------------


@transaction.atomic
def user_update_profile(*, user: User, name: str) -> User:
    user.name = " ".join((name or "").split())[:150]
    user.save(update_fields=["name"])
    return user


# --- workspaces ------------------------------------------------------------------


@transaction.atomic
def workspace_create(*, name: str, owner: User) -> Workspace:
    workspace = Workspace.objects.create(
        name=_clean_name(name or default_workspace_name(owner)), created_by=owner
    )
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    _audit(workspace=workspace, actor=owner, action="workspace.created", target=workspace.name)
    return workspace


@transaction.atomic
def workspace_rename(*, actor: Membership, name: str) -> Workspace:
    _require(actor, Perm.MANAGE_WORKSPACE, "Only owners and admins can rename the workspace.")
    workspace = _lock_workspace(actor.workspace)
    old, workspace.name = workspace.name, _clean_name(name)
    workspace.save(update_fields=["name"])
    _audit(
        workspace=workspace,
        actor=actor.user,
        action="workspace.renamed",
        target=workspace.name,
        old_name=old,
    )
    return workspace


# --- memberships -----------------------------------------------------------------


@transaction.atomic
def membership_change_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    _require(actor, Perm.MANAGE_MEMBERS, "Only owners and admins can change roles.")
    role = _clean_role(role)
    workspace = _lock_workspace(actor.workspace)
    membership = _fresh_membership(membership)
    actor = _fresh_membership(actor)
    if membership.workspace_id != workspace.pk:
        raise Forbidden("That person is not in this workspace.")
    if membership.role == role:
        return membership
    if Role.OWNER in (membership.role, role) and actor.role != Role.OWNER:
        raise Forbidden("Only an owner can make someone an owner or change an owner's role.")
    if membership.role == Role.OWNER and _owner_count(workspace) <= 1:
        raise InvalidRequest(
            "A workspace needs at least one owner. Make someone else an owner first."
        )
    old, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    _audit(
        workspace=workspace,
        actor=actor.user,
        action="member.role_changed",
        target=membership.user.email,
        old_role=old,
        new_role=role,
    )
    return membership


def _delete_membership(membership: Membership, *, actor: User, action: str) -> None:
    workspace, user = membership.workspace, membership.user
    membership.delete()
    _audit(workspace=workspace, actor=actor, action=action, target=user.email)
    # Other rooms (e.g. usage revoking the person's API keys) react in this transaction.
    membership_removed.send(sender=Membership, workspace=workspace, user=user)


@transaction.atomic
def membership_remove(*, actor: Membership, membership: Membership) -> None:
    _require(actor, Perm.MANAGE_MEMBERS, "Only owners and admins can remove members.")
    workspace = _lock_workspace(actor.workspace)
    membership = _fresh_membership(membership)
    actor = _fresh_membership(actor)
    if membership.workspace_id != workspace.pk:
        raise Forbidden("That person is not in this workspace.")
    if membership.pk == actor.pk:
        raise InvalidRequest("To remove yourself, leave the workspace instead.")
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden("Only an owner can remove another owner.")
    _delete_membership(membership, actor=actor.user, action="member.removed")


@transaction.atomic
def workspace_leave(*, membership: Membership) -> None:
    workspace = _lock_workspace(membership.workspace)
    membership = _fresh_membership(membership)
    if membership.role == Role.OWNER and _owner_count(workspace) <= 1:
        raise InvalidRequest(
            "You are the last owner. Transfer ownership to someone else before leaving."
        )
    _delete_membership(membership, actor=membership.user, action="member.left")


@transaction.atomic
def ownership_transfer(*, actor: Membership, new_owner: Membership) -> Membership:
    """The acting owner hands ownership to another member and becomes an admin."""
    _require(actor, Perm.TRANSFER_OWNERSHIP, "Only an owner can transfer ownership.")
    workspace = _lock_workspace(actor.workspace)
    actor = _fresh_membership(actor)
    new_owner = _fresh_membership(new_owner)
    if actor.role != Role.OWNER:
        raise Forbidden("Only an owner can transfer ownership.")
    if new_owner.workspace_id != workspace.pk:
        raise Forbidden("That person is not in this workspace.")
    if new_owner.pk == actor.pk:
        raise InvalidRequest("Choose another member to become the owner.")
    new_owner.role = Role.OWNER
    new_owner.save(update_fields=["role"])
    actor.role = Role.ADMIN
    actor.save(update_fields=["role"])
    _audit(
        workspace=workspace,
        actor=actor.user,
        action="workspace.ownership_transferred",
        target=new_owner.user.email,
    )
    return new_owner


# --- invitations -----------------------------------------------------------------


def _send_invitation(invitation: Invitation, token: str, link_base: str | None) -> None:
    transaction.on_commit(
        lambda: emails.send_invitation(invitation=invitation, token=token, link_base=link_base)
    )


def _new_token(invitation: Invitation) -> str:
    token = Invitation.new_token()
    invitation.token_hash = hash_token(token)
    return token


@transaction.atomic
def invitation_create(
    *, actor: Membership, email: str, role: str, link_base: str | None = None
) -> tuple[Invitation, str]:
    """Invite someone by email. Returns the invitation and its token (the only
    time it exists in clear: it goes into the email link)."""
    _require(actor, Perm.MANAGE_MEMBERS, "Only owners and admins can invite people.")
    role = _clean_role(role)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden("Only an owner can invite another owner.")
    email = User.objects.normalize_email(email or "").strip().lower()
    if not email:
        raise InvalidRequest("Enter an email address.", details={"email": ["Required."]})
    workspace = _lock_workspace(actor.workspace)
    if Membership.objects.for_workspace(workspace).filter(user__email__iexact=email).exists():
        raise InvalidRequest(f"{email} is already a member of this workspace.")
    open_invites = Invitation.objects.for_workspace(workspace).filter(
        email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    )
    now = clock.now()
    if open_invites.filter(expires_at__gt=now).exists():
        raise InvalidRequest(f"{email} already has a pending invitation. Resend it instead.")
    open_invites.update(revoked_at=now)  # expired ones make way for the new one
    invitation = Invitation(workspace=workspace, email=email, role=role, invited_by=actor.user)
    token = _new_token(invitation)
    invitation.save()
    _audit(
        workspace=workspace, actor=actor.user, action="invitation.created", target=email, role=role
    )
    _send_invitation(invitation, token, link_base)
    return invitation, token


def _lock_invitation(invitation: Invitation) -> Invitation:
    return (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("workspace", "invited_by")
        .get(pk=invitation.pk)
    )


@transaction.atomic
def invitation_resend(
    *, actor: Membership, invitation: Invitation, link_base: str | None = None
) -> tuple[Invitation, str]:
    """Send a fresh link (the old one stops working) and restart the expiry clock."""
    _require(actor, Perm.MANAGE_MEMBERS, "Only owners and admins can resend invitations.")
    invitation = _lock_invitation(invitation)
    if invitation.workspace_id != actor.workspace_id:
        raise Forbidden("That invitation is not for this workspace.")
    if invitation.accepted_at or invitation.revoked_at:
        raise InvalidRequest(f"This invitation was already {invitation.status}.")
    now = clock.now()
    token = _new_token(invitation)
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=settings.TOLLGATE_INVITATION_TTL_DAYS)
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    _audit(
        workspace=invitation.workspace,
        actor=actor.user,
        action="invitation.resent",
        target=invitation.email,
    )
    _send_invitation(invitation, token, link_base)
    return invitation, token


@transaction.atomic
def invitation_revoke(*, actor: Membership, invitation: Invitation) -> Invitation:
    _require(actor, Perm.MANAGE_MEMBERS, "Only owners and admins can revoke invitations.")
    invitation = _lock_invitation(invitation)
    if invitation.workspace_id != actor.workspace_id:
        raise Forbidden("That invitation is not for this workspace.")
    if invitation.accepted_at:
        raise InvalidRequest("This invitation was already accepted; remove the member instead.")
    if invitation.revoked_at:
        return invitation
    invitation.revoked_at = clock.now()
    invitation.save(update_fields=["revoked_at"])
    _audit(
        workspace=invitation.workspace,
        actor=actor.user,
        action="invitation.revoked",
        target=invitation.email,
    )
    return invitation


def user_owns_email(*, user: User, email: str) -> bool:
    """True when `email` is one of the user's verified addresses."""
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the workspace. Single use: the row is locked, so a double click or
    a second person with the link can't use it twice."""
    invitation = _lock_invitation(invitation)
    if invitation.status != "pending":
        raise InvalidRequest(f"This invitation is {invitation.status} and can't be used.")
    if not user_owns_email(user=user, email=invitation.email):
        raise Forbidden(
            f"This invitation was sent to {invitation.email}. "
            "Sign in with that address (verified) to accept it."
        )
    membership, created = Membership.objects.get_or_create(
        workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = clock.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    _audit(
        workspace=invitation.workspace,
        actor=user,
        action="invitation.accepted",
        target=invitation.email,
        role=membership.role,
        already_member=not created,
    )
    return membership


# --- suspension (operators, from admin) --------------------------------------------


def _set_suspension(subject: User | Workspace, *, reason: str | None) -> None:
    """Users and workspaces carry the same three suspension fields; reason=None lifts it."""
    subject.is_suspended = reason is not None
    subject.suspended_reason = (reason or "").strip()[:300]
    subject.suspended_at = clock.now() if reason is not None else None
    subject.save(update_fields=["is_suspended", "suspended_reason", "suspended_at"])


@transaction.atomic
def user_suspend(*, user: User, reason: str, operator: User | None) -> User:
    _set_suspension(user, reason=reason or "")
    _audit(
        workspace=None,
        actor=operator,
        action="user.suspended",
        target=user.email,
        reason=user.suspended_reason,
    )
    return user


@transaction.atomic
def user_unsuspend(*, user: User, operator: User | None) -> User:
    _set_suspension(user, reason=None)
    _audit(workspace=None, actor=operator, action="user.unsuspended", target=user.email)
    return user


@transaction.atomic
def workspace_suspend(*, workspace: Workspace, reason: str, operator: User | None) -> Workspace:
    _set_suspension(workspace, reason=reason or "")
    _audit(
        workspace=workspace,
        actor=operator,
        action="workspace.suspended",
        target=workspace.name,
        reason=workspace.suspended_reason,
    )
    transaction.on_commit(lambda: _tell_owners_suspended(workspace.pk), robust=True)
    return workspace


def _tell_owners_suspended(workspace_id: int) -> None:
    """The owners hear why, that billing stays open, and whom to write to."""
    workspace = Workspace.objects.get(pk=workspace_id)
    owners = Membership.objects.for_workspace(workspace).filter(role=Role.OWNER)
    for membership in owners.select_related("user"):
        emails.send_workspace_suspended(workspace=workspace, to=membership.user.email)


@transaction.atomic
def workspace_unsuspend(*, workspace: Workspace, operator: User | None) -> Workspace:
    _set_suspension(workspace, reason=None)
    _audit(
        workspace=workspace, actor=operator, action="workspace.unsuspended", target=workspace.name
    )
    return workspace

"""Writes for privacy: deleting an account, deleting (and undoing the deletion
of) a workspace, retention, the workspace's MFA rule and email preferences.

What happens to each app's rows is the registry's business (accounts/privacy.py);
this module orders the steps, keeps the invariants (a workspace is never left
without an owner while it lives) and audits."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from accounts import audit, emails, privacy
from accounts.models import AuditEvent, Invitation, Membership, User, Workspace
from accounts.models_privacy import NotificationPreference, WorkspacePolicy
from accounts.roles import Perm, Role
from accounts.signals import membership_removed
from config import clock
from config.errors import Forbidden, InvalidRequest

logger = logging.getLogger(__name__)

EMAIL_PATTERN = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
MAX_RETENTION_DAYS = 3650


# --- reads the pages need -------------------------------------------------------------


def policy_for(workspace: Workspace) -> WorkspacePolicy:
    policy, _ = WorkspacePolicy.objects.get_or_create(workspace=workspace)
    return policy


def workspaces_blocking_deletion(*, user: User) -> list[Workspace]:
    """Workspaces the person is the last owner of (and not already being
    deleted): they must transfer ownership or delete the workspace first."""
    blocking = []
    owned = Membership.objects.for_user(user).filter(role=Role.OWNER).select_related("workspace")
    for membership in owned:
        workspace = membership.workspace
        owners = Membership.objects.for_workspace(workspace).filter(role=Role.OWNER).count()
        if owners <= 1 and not policy_for(workspace).deletion_pending:
            blocking.append(workspace)
    return blocking


# --- deleting an account ---------------------------------------------------------------


def _confirmed(typed: str, expected: str) -> bool:
    return " ".join((typed or "").split()).casefold() == " ".join(expected.split()).casefold()


@transaction.atomic
def account_delete(*, user: User, confirmation: str) -> str:
    """Delete a person: leave every workspace, revoke their keys, delete their
    content, pseudonymize them where records must stay (ledger, audit log,
    consents). The row stays as a nameless tombstone so the ledger's foreign
    keys keep pointing somewhere. Returns the pseudonym."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        raise InvalidRequest("This account is already deleted.")
    if not _confirmed(confirmation, user.email):
        raise InvalidRequest(
            "Type your email address exactly to confirm.", details={"confirmation": ["Mismatch."]}
        )
    blocking = workspaces_blocking_deletion(user=user)
    if blocking:
        names = ", ".join(f"“{w.name}”" for w in blocking)
        raise InvalidRequest(
            f"You are the last owner of {names}. Make someone else an owner "
            "or delete the workspace first, then delete your account.",
            details={"workspaces": [w.pk for w in blocking]},
        )
    address, pseudonym = user.email, privacy.user_pseudonym(user)
    secrets = _identifying_strings(user)
    for membership in Membership.objects.for_user(user).select_related("workspace"):
        _leave(membership, actor=user)
    for owner in privacy.data_owners():
        if owner.erase_user:
            owner.erase_user(user, pseudonym)
    _erase_account_rows(user, secrets, pseudonym)
    _tombstone(user, pseudonym)
    audit.record(workspace=None, actor=None, action="user.deleted", target=pseudonym)
    transaction.on_commit(lambda: _send_account_deleted(user, address))
    return pseudonym


def _identifying_strings(user: User) -> list[str]:
    addresses = set(EmailAddress.objects.filter(user=user).values_list("email", flat=True))
    strings = sorted(addresses | {user.email}, key=len, reverse=True)
    if len(user.name.strip()) >= 3:  # shorter names would match inside other words
        strings.append(user.name.strip())
    return strings


def _leave(membership: Membership, *, actor: User) -> None:
    workspace = Workspace.objects.select_for_update().get(pk=membership.workspace_id)
    membership.delete()
    audit.record(workspace=workspace, actor=actor, action="member.left", target=actor.email)
    membership_removed.send(sender=Membership, workspace=workspace, user=actor)


def _erase_account_rows(user: User, secrets: list[str], pseudonym: str) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.usersessions.models import UserSession

    for session in UserSession.objects.filter(user=user):
        session.end()  # deletes the session from the session store too
    UserSession.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    emails_lower = [s.lower() for s in secrets if "@" in s]
    Invitation.objects.filter(email__in=emails_lower).delete()
    EmailAddress.objects.filter(user=user).delete()
    NotificationPreference.objects.filter(user=user).delete()
    _scrub_audit(_events_mentioning(user, secrets), secrets, pseudonym)
    _scrub_admin_log(user, secrets, pseudonym)


def _events_mentioning(user: User, secrets: list[str]):
    query = Q(actor=user)
    for secret in secrets:
        query |= Q(target__icontains=secret) | Q(data_text__icontains=secret)
    return AuditEvent.objects.annotate(data_text=Cast("data", TextField())).filter(query)


def _scrub_audit(events, secrets: list[str], replacement: str) -> None:
    for event in events:
        event.target = privacy.scrub(event.target, secrets, replacement)[:254]
        event.data = privacy.scrub(event.data, secrets, replacement)
        event.save(update_fields=["target", "data"])


def _scrub_admin_log(user: User, secrets: list[str], pseudonym: str) -> None:
    from django.contrib.admin.models import LogEntry

    query = Q()
    for secret in secrets:
        query |= Q(object_repr__icontains=secret) | Q(change_message__icontains=secret)
    for entry in LogEntry.objects.filter(query):
        entry.object_repr = privacy.scrub(entry.object_repr, secrets, pseudonym)[:200]
        entry.change_message = privacy.scrub(entry.change_message, secrets, pseudonym)
        entry.save(update_fields=["object_repr", "change_message"])


def _tombstone(user: User, pseudonym: str) -> None:
    user.email = f"{pseudonym}@deleted.invalid"
    user.name = ""
    user.set_unusable_password()
    user.is_active = user.is_staff = user.is_superuser = user.is_suspended = False
    user.suspended_reason, user.suspended_at, user.last_login = "", None, None
    user.save()
    user.groups.clear()
    user.user_permissions.clear()


def _send_account_deleted(user: User, address: str) -> None:
    try:
        emails.send_to_person(
            user=user,
            kind="security",
            prefix="accounts/email/account_deleted",
            context={"address": address},
            to=address,
        )
    except Exception:  # the deletion stands; a mail server hiccup must not undo it
        logger.exception("account-deleted email failed for user %s", user.pk)


# --- deleting a workspace ----------------------------------------------------------------


def _require_owner(actor: Membership, perm: str, message: str) -> Membership:
    actor = Membership.objects.select_related("workspace", "user").get(pk=actor.pk)
    if not actor.can(perm):
        raise Forbidden(message)
    return actor


def closure_summary(*, workspace: Workspace) -> list[str]:
    """What closing the workspace does outside accounts, for the confirmation page."""
    lines: list[str] = []
    for hooks in privacy.closure_hooks():
        lines += hooks.describe(workspace)
    return lines


def workspace_deletion_schedule(
    *, actor: Membership, confirmation: str, cancel_now: bool
) -> WorkspacePolicy:
    """Cancel the subscription (at period end, or now with a final invoice) and
    schedule the erasure after the grace period, during which owners can undo."""
    actor = _require_owner(actor, Perm.DELETE_WORKSPACE, "Only an owner can delete the workspace.")
    workspace = actor.workspace
    if not _confirmed(confirmation, workspace.name):
        raise InvalidRequest(
            "Type the workspace's name exactly to confirm.",
            details={"confirmation": ["Mismatch."]},
        )
    if policy_for(workspace).deletion_pending:
        raise InvalidRequest("This workspace is already scheduled for deletion.")
    # Stripe first, outside our transaction: if it fails nothing here changes.
    for hooks in privacy.closure_hooks():
        hooks.close(workspace, cancel_now=cancel_now)
    with transaction.atomic():
        policy = WorkspacePolicy.objects.select_for_update().get(pk=policy_for(workspace).pk)
        now = clock.now()
        policy.deletion_requested_at = now
        policy.deletion_requested_by = actor.user
        policy.deletion_due_at = now + timedelta(
            days=settings.TOLLGATE_WORKSPACE_DELETION_GRACE_DAYS
        )
        policy.subscription_cancelled_now = cancel_now
        policy.save()
        audit.record(
            workspace=workspace,
            actor=actor.user,
            action="workspace.deletion_scheduled",
            target=workspace.name,
            due_at=policy.deletion_due_at.isoformat(),
            subscription="cancelled now, final invoice" if cancel_now else "ends at period end",
        )
    return policy


def workspace_deletion_undo(*, actor: Membership) -> WorkspacePolicy:
    actor = _require_owner(actor, Perm.DELETE_WORKSPACE, "Only an owner can undo the deletion.")
    workspace = actor.workspace
    for hooks in privacy.closure_hooks():
        if hooks.reopen:
            hooks.reopen(workspace)
    with transaction.atomic():
        policy = WorkspacePolicy.objects.select_for_update().get(pk=policy_for(workspace).pk)
        if not policy.deletion_pending:
            raise InvalidRequest("This workspace is not scheduled for deletion.")
        policy.deletion_requested_at = policy.deletion_due_at = None
        policy.deletion_requested_by = None
        policy.save()
        audit.record(
            workspace=workspace,
            actor=actor.user,
            action="workspace.deletion_cancelled",
            target=workspace.name,
        )
    return policy


@transaction.atomic
def workspace_erase(*, workspace: Workspace) -> bool:
    """The grace period is over: delete the content and memberships; keep the
    records of account (pseudonymized) until `retained_until`."""
    policy = WorkspacePolicy.objects.select_for_update().get(workspace=workspace)
    if not policy.deletion_pending or policy.deletion_due_at > clock.now():
        return False
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    pseudonym = privacy.workspace_pseudonym(workspace)
    member_emails = list(
        Membership.objects.for_workspace(workspace).values_list("user__email", flat=True)
    )
    for owner in privacy.data_owners():
        if owner.erase_workspace:
            owner.erase_workspace(workspace, pseudonym)
    for membership in Membership.objects.for_workspace(workspace).select_related("user"):
        user = membership.user
        membership.delete()
        membership_removed.send(sender=Membership, workspace=workspace, user=user)
    Invitation.objects.for_workspace(workspace).delete()
    _pseudonymize_workspace_audit(workspace, [workspace.name, *member_emails], pseudonym)
    workspace.name = pseudonym
    workspace.created_by = None
    workspace.suspended_reason = ""
    workspace.save()
    now = clock.now()
    policy.deleted_at = now
    policy.retained_until = now + timedelta(days=365 * settings.TOLLGATE_LEGAL_RETENTION_YEARS)
    policy.deletion_requested_by = None
    policy.require_mfa = False
    policy.save()
    audit.record(workspace=workspace, actor=None, action="workspace.deleted", target=pseudonym)
    return True


def _pseudonymize_workspace_audit(workspace: Workspace, secrets: list[str], pseudonym: str) -> None:
    for event in AuditEvent.objects.for_workspace(workspace):
        target = privacy.scrub(event.target, secrets, pseudonym)
        data = privacy.scrub(event.data, secrets, pseudonym)
        # Anyone else named in the log (invitees, operators) goes too.
        event.target = EMAIL_PATTERN.sub("[email removed]", target)[:254]
        event.data = privacy.scrub_pattern(data, EMAIL_PATTERN, "[email removed]")
        event.actor = None
        event.save(update_fields=["target", "data", "actor"])


def workspaces_erase_due() -> int:
    due = WorkspacePolicy.objects.filter(
        deletion_due_at__lte=clock.now(), deleted_at__isnull=True
    ).select_related("workspace")
    return sum(workspace_erase(workspace=policy.workspace) for policy in due)


@transaction.atomic
def workspaces_purge_retained() -> int:
    """The legal retention period of deleted workspaces has passed: drop what was kept."""
    expired = WorkspacePolicy.objects.filter(retained_until__lte=clock.now()).select_related(
        "workspace"
    )
    count = 0
    for policy in expired:
        for owner in privacy.data_owners():
            if owner.purge_retained:
                owner.purge_retained(policy.workspace)
        AuditEvent.objects.for_workspace(policy.workspace).delete()
        policy.workspace.delete()
        count += 1
    return count


# --- retention ---------------------------------------------------------------------------


def _retention_days(policy_days: int | None) -> int | None:
    operator = settings.TOLLGATE_CONTENT_RETENTION_DAYS
    choices = [d for d in (operator, policy_days) if d]
    return min(choices) if choices else None


def retention_enforce() -> int:
    """Delete prompts and answers past their workspace's retention (the smaller
    of the operator's default and the workspace's own choice). Returns rows deleted."""
    if settings.TOLLGATE_CONTENT_RETENTION_DAYS:
        workspaces = Workspace.objects.filter(
            Q(policy__isnull=True) | Q(policy__deleted_at__isnull=True)
        )
    else:
        workspaces = Workspace.objects.filter(
            policy__content_retention_days__isnull=False, policy__deleted_at__isnull=True
        )
    total = 0
    for workspace in workspaces.select_related("policy"):
        policy = getattr(workspace, "policy", None)
        days = _retention_days(policy.content_retention_days if policy else None)
        if days:
            total += _purge_workspace_content(workspace, clock.now() - timedelta(days=days), days)
    return total


@transaction.atomic
def _purge_workspace_content(workspace: Workspace, cutoff, days: int) -> int:
    deleted = sum(
        owner.purge_content(workspace, cutoff)
        for owner in privacy.data_owners()
        if owner.purge_content
    )
    if deleted:
        audit.record(
            workspace=workspace,
            actor=None,
            action="content.expired",
            target=f"{deleted} items older than {days} days",
            deleted=deleted,
        )
    return deleted


# --- the workspace's rules ----------------------------------------------------------------


@transaction.atomic
def policy_update(
    *, actor: Membership, require_mfa: bool, content_retention_days: int | None
) -> WorkspacePolicy:
    actor = _require_owner(
        actor, Perm.MANAGE_SECURITY, "Only an owner can change the workspace's security rules."
    )
    if content_retention_days is not None and not 1 <= content_retention_days <= MAX_RETENTION_DAYS:
        raise InvalidRequest(
            f"Choose between 1 and {MAX_RETENTION_DAYS} days, or keep until deleted.",
            details={"content_retention_days": ["Out of range."]},
        )
    workspace = actor.workspace
    policy = WorkspacePolicy.objects.select_for_update().get(pk=policy_for(workspace).pk)
    if policy.require_mfa != require_mfa:
        policy.require_mfa = require_mfa
        audit.record(
            workspace=workspace,
            actor=actor.user,
            action="security.mfa_required" if require_mfa else "security.mfa_optional",
            target=workspace.name,
        )
    if policy.content_retention_days != content_retention_days:
        audit.record(
            workspace=workspace,
            actor=actor.user,
            action="privacy.retention_changed",
            target=workspace.name,
            old_days=policy.content_retention_days,
            new_days=content_retention_days,
        )
        policy.content_retention_days = content_retention_days
    policy.save()
    return policy


@transaction.atomic
def notification_preferences_update(
    *, user: User, usage_alerts: bool, invoices: bool, product: bool
) -> NotificationPreference:
    pref, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    pref.usage_alerts, pref.invoices, pref.product = usage_alerts, invoices, product
    pref.updated_at = clock.now()
    pref.save()
    return pref

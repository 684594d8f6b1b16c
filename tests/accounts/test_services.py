"""Use cases of accounts.services on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone

from accounts import selectors, services
from accounts.models import AuditEvent, Invitation, Membership, User, hash_token
from accounts.signals import membership_removed
from config.errors import Forbidden, InvalidRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_m(workspace, owner):
    return Membership.objects.get(workspace=workspace, user=owner)


# --- workspaces --------------------------------------------------------------------


def test_workspace_create_makes_the_creator_owner_and_audits():
    user = UserFactory()
    ws = services.workspace_create(name="  Acme   Labs ", owner=user)
    assert ws.name == "Acme Labs"
    assert Membership.objects.get(workspace=ws, user=user).role == "owner"
    assert AuditEvent.objects.for_workspace(ws).filter(action="workspace.created").exists()


def test_workspace_create_rejects_blank_and_too_long_names():
    user = UserFactory()
    with pytest.raises(InvalidRequest):
        services.workspace_create(name="x" * 101, owner=user)
    ws = services.workspace_create(name="", owner=user)  # a default name, not an error
    assert ws.name.endswith("'s workspace")


def test_rename_needs_manage_workspace(workspace, owner_m, make_member):
    services.workspace_rename(actor=owner_m, name="Renamed")
    workspace.refresh_from_db()
    assert workspace.name == "Renamed"
    member = make_member(workspace=workspace, role="member")
    with pytest.raises(Forbidden):
        services.workspace_rename(actor=member, name="Nope")
    with pytest.raises(InvalidRequest):
        services.workspace_rename(actor=owner_m, name="   ")


# --- roles, removal, leaving, transfer ------------------------------------------------


def test_admin_changes_member_roles_but_not_owners(workspace, owner_m, make_member):
    admin = make_member(workspace=workspace, role="admin")
    member = make_member(workspace=workspace, role="member")
    assert services.membership_change_role(actor=admin, membership=member, role="finance").role == (
        "finance"
    )
    with pytest.raises(Forbidden):
        services.membership_change_role(actor=admin, membership=owner_m, role="member")
    with pytest.raises(Forbidden):
        services.membership_change_role(actor=admin, membership=member, role="owner")
    with pytest.raises(Forbidden):
        services.membership_change_role(actor=member, membership=admin, role="member")
    with pytest.raises(InvalidRequest):
        services.membership_change_role(actor=owner_m, membership=member, role="emperor")


def test_the_last_owner_cannot_be_demoted(workspace, owner_m, make_member):
    with pytest.raises(InvalidRequest, match="at least one owner"):
        services.membership_change_role(actor=owner_m, membership=owner_m, role="admin")
    second = make_member(workspace=workspace, role="member")
    services.membership_change_role(actor=owner_m, membership=second, role="owner")
    services.membership_change_role(actor=owner_m, membership=owner_m, role="admin")
    assert selectors.workspace_owner_count(workspace=workspace) == 1


def test_remove_member_rules_and_signal(workspace, owner_m, make_member):
    admin = make_member(workspace=workspace, role="admin")
    member = make_member(workspace=workspace, role="member")
    received = []

    def on_removed(sender, workspace, user, **kwargs):
        received.append((workspace.pk, user.pk))

    membership_removed.connect(on_removed)
    try:
        with pytest.raises(Forbidden):
            services.membership_remove(actor=admin, membership=owner_m)
        with pytest.raises(InvalidRequest, match="leave"):
            services.membership_remove(actor=admin, membership=admin)
        with pytest.raises(Forbidden):
            services.membership_remove(actor=member, membership=admin)
        services.membership_remove(actor=admin, membership=member)
    finally:
        membership_removed.disconnect(on_removed)
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert received == [(workspace.pk, member.user_id)]
    assert User.objects.filter(pk=member.user_id).exists()  # the person keeps their login


def test_leave_workspace_but_not_as_last_owner(workspace, owner_m, make_member):
    member = make_member(workspace=workspace, role="member")
    services.workspace_leave(membership=member)
    assert not Membership.objects.filter(pk=member.pk).exists()
    with pytest.raises(InvalidRequest, match="last owner"):
        services.workspace_leave(membership=owner_m)
    assert AuditEvent.objects.for_workspace(workspace).filter(action="member.left").exists()


def test_transfer_ownership(workspace, owner_m, make_member):
    member = make_member(workspace=workspace, role="member")
    admin = make_member(workspace=workspace, role="admin")
    with pytest.raises(Forbidden):
        services.ownership_transfer(actor=admin, new_owner=member)
    with pytest.raises(InvalidRequest):
        services.ownership_transfer(actor=owner_m, new_owner=owner_m)
    services.ownership_transfer(actor=owner_m, new_owner=member)
    owner_m.refresh_from_db()
    member.refresh_from_db()
    assert (owner_m.role, member.role) == ("admin", "owner")
    # The old owner can now leave; the workspace keeps an owner.
    services.workspace_leave(membership=owner_m)
    assert selectors.workspace_owner_count(workspace=workspace) == 1


def test_services_refuse_memberships_of_another_workspace(workspace, owner_m, make_member):
    stranger = make_member(role="member")  # another workspace
    with pytest.raises(Forbidden):
        services.membership_remove(actor=owner_m, membership=stranger)
    with pytest.raises(Forbidden):
        services.membership_change_role(actor=owner_m, membership=stranger, role="admin")
    with pytest.raises(Forbidden):
        services.ownership_transfer(actor=owner_m, new_owner=stranger)


# --- invitations ----------------------------------------------------------------------


def test_invitation_create_stores_only_the_hash_and_emails_text_and_html(
    workspace, owner_m, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = services.invitation_create(
            actor=owner_m, email="New.Person@Example.com", role="admin"
        )
    assert invitation.email == "new.person@example.com"
    assert invitation.token_hash == hash_token(token)
    assert token not in str(Invitation.objects.filter(pk=invitation.pk).values().get())
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    (message,) = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert workspace.name in message.subject
    assert token in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert token in html
    assert "Accept invitation" in html


def test_invitation_rules(workspace, owner_m, make_member):
    admin = make_member(workspace=workspace, role="admin")
    member = make_member(workspace=workspace, role="member")
    with pytest.raises(Forbidden):
        services.invitation_create(actor=member, email="a@example.com", role="member")
    with pytest.raises(Forbidden):
        services.invitation_create(actor=admin, email="a@example.com", role="owner")
    with pytest.raises(InvalidRequest, match="already a member"):
        services.invitation_create(actor=admin, email=member.user.email.upper(), role="member")
    services.invitation_create(actor=admin, email="a@example.com", role="member")
    with pytest.raises(InvalidRequest, match="pending invitation"):
        services.invitation_create(actor=owner_m, email="A@example.com", role="member")


def test_an_expired_invitation_makes_way_for_a_new_one(workspace, owner_m):
    old, _ = services.invitation_create(actor=owner_m, email="a@example.com", role="member")
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    new, _ = services.invitation_create(actor=owner_m, email="a@example.com", role="member")
    old.refresh_from_db()
    assert old.revoked_at is not None and new.is_open


def test_resend_replaces_the_token_and_restarts_the_clock(workspace, owner_m):
    invitation, first = services.invitation_create(
        actor=owner_m, email="a@example.com", role="member"
    )
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    invitation, second = services.invitation_resend(actor=owner_m, invitation=invitation)
    assert first != second
    assert selectors.invitation_by_token(token=first) is None
    assert selectors.invitation_by_token(token=second).pk == invitation.pk
    assert invitation.is_open


def test_revoke_closes_the_invitation(workspace, owner_m):
    invitation, _ = services.invitation_create(actor=owner_m, email="a@example.com", role="member")
    services.invitation_revoke(actor=owner_m, invitation=invitation)
    user = UserFactory(email="a@example.com")
    with pytest.raises(InvalidRequest, match="revoked"):
        services.invitation_accept(invitation=invitation, user=user)
    with pytest.raises(InvalidRequest):
        services.invitation_resend(actor=owner_m, invitation=invitation)


def test_accept_is_single_use_and_for_the_invited_email_only(workspace, owner_m):
    invitation, _ = services.invitation_create(
        actor=owner_m, email="joiner@example.com", role="finance"
    )
    other = UserFactory(email="someone.else@example.com")
    with pytest.raises(Forbidden, match=r"joiner@example\.com"):
        services.invitation_accept(invitation=invitation, user=other)
    joiner = UserFactory(email="Joiner@example.com")
    membership = services.invitation_accept(invitation=invitation, user=joiner)
    assert (membership.workspace, membership.role) == (workspace, "finance")
    with pytest.raises(InvalidRequest, match="accepted"):
        services.invitation_accept(invitation=invitation, user=joiner)
    assert User.objects.filter(email__iexact="joiner@example.com").count() == 1


def test_accept_needs_a_verified_address(workspace, owner_m):
    invitation, _ = services.invitation_create(
        actor=owner_m, email="unverified@example.com", role="member"
    )
    user = UserFactory(email="unverified@example.com", verified=False)
    with pytest.raises(Forbidden):
        services.invitation_accept(invitation=invitation, user=user)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    services.invitation_accept(invitation=invitation, user=user)


def test_an_existing_user_joins_with_a_secondary_verified_address(workspace, owner_m):
    user = UserFactory(email="main@example.com")
    EmailAddress.objects.create(user=user, email="work@example.com", verified=True)
    invitation, _ = services.invitation_create(
        actor=owner_m, email="work@example.com", role="member"
    )
    assert list(selectors.invitations_for_user(user=user)) == [invitation]
    services.invitation_accept(invitation=invitation, user=user)
    assert list(selectors.invitations_for_user(user=user)) == []


def test_expired_invitation_cannot_be_accepted(workspace, owner_m):
    invitation, _ = services.invitation_create(actor=owner_m, email="x@example.com", role="member")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    with pytest.raises(InvalidRequest, match="expired"):
        services.invitation_accept(invitation=invitation, user=UserFactory(email="x@example.com"))


# --- suspension ------------------------------------------------------------------------


def test_suspend_and_unsuspend(workspace):
    user = UserFactory()
    services.user_suspend(user=user, reason="Chargeback fraud", operator=None)
    user.refresh_from_db()
    assert user.is_suspended and user.suspended_reason == "Chargeback fraud"
    services.user_unsuspend(user=user, operator=None)
    user.refresh_from_db()
    assert not user.is_suspended and user.suspended_at is None
    services.workspace_suspend(workspace=workspace, reason="Abuse", operator=None)
    workspace.refresh_from_db()
    assert workspace.is_suspended and workspace.suspended_at
    assert AuditEvent.objects.filter(action="user.suspended", target=user.email).exists()

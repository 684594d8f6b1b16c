"""Reads: scoped to a workspace or a person, and cheap on every request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors, services
from accounts.management.commands.seed_demo import OPERATOR_EMAIL, Command
from accounts.models import Invitation, Membership, User
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_membership_for_prefers_the_session_workspace_then_the_first(owner, workspace):
    other = WorkspaceFactory(name="AAA first by name")
    MembershipFactory(workspace=other, user=owner, role="member")
    assert selectors.membership_for(user=owner, workspace_id=workspace.pk).workspace == workspace
    assert selectors.membership_for(user=owner, workspace_id=None).workspace == other
    stranger = WorkspaceFactory()
    # A workspace the user is not in is ignored, never returned.
    assert selectors.membership_for(user=owner, workspace_id=stranger.pk).workspace == other


def test_members_and_invitations_are_scoped_to_the_workspace(workspace, owner, make_member):
    make_member(role="member")  # elsewhere
    actor = Membership.objects.get(user=owner)
    services.invitation_create(actor=actor, email="x@example.com", role="member")
    other_owner = MembershipFactory(role="owner")
    services.invitation_create(actor=other_owner, email="y@example.com", role="member")
    assert [m.user for m in selectors.workspace_members(workspace=workspace)] == [owner]
    assert [i.email for i in selectors.pending_invitations(workspace=workspace)] == [
        "x@example.com"
    ]


def test_pending_lists_expired_but_not_closed_invitations(workspace, owner):
    actor = Membership.objects.get(user=owner)
    expired, _ = services.invitation_create(actor=actor, email="e@example.com", role="member")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = services.invitation_create(actor=actor, email="r@example.com", role="member")
    services.invitation_revoke(actor=actor, invitation=revoked)
    pending = list(selectors.pending_invitations(workspace=workspace))
    assert pending == [expired] and pending[0].status == "expired"


def test_invitations_for_user_skip_expired_and_joined_workspaces(workspace, owner):
    actor = Membership.objects.get(user=owner)
    person = UserFactory(email="p@example.com")
    invitation, _ = services.invitation_create(actor=actor, email="p@example.com", role="member")
    assert list(selectors.invitations_for_user(user=person)) == [invitation]
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    assert list(selectors.invitations_for_user(user=person)) == []


def test_invitation_by_token_rejects_junk():
    assert selectors.invitation_by_token(token="") is None
    assert selectors.invitation_by_token(token="x" * 500) is None


def test_members_page_query_count_does_not_grow_with_members(
    client, workspace, owner, make_member, django_assert_max_num_queries
):
    for _ in range(15):
        make_member(workspace=workspace, role="member")
    actor = Membership.objects.get(user=owner)
    for n in range(5):
        services.invitation_create(actor=actor, email=f"i{n}@example.com", role="member")
    client.force_login(owner)
    # 18: allauth.usersessions records the session (a session's first page: a
    # savepoint'ed get-or-create) and billing's banner reads the economics settings.
    # What matters here: the count doesn't grow with the 15 members.
    with django_assert_max_num_queries(18):
        assert client.get("/workspace/members/").status_code == 200


def test_seed_demo_operator_gets_a_workspace_once():
    command = Command()
    first = command._operator()
    assert "shown once" in first
    command._operator()
    operator = User.objects.get(email=OPERATOR_EMAIL)
    assert operator.is_superuser and operator.memberships.count() == 1

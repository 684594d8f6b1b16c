"""A member of workspace A gets 404 for every workspace-B object URL."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import Invitation, Membership
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def b_objects():
    workspace_b = WorkspaceFactory(name="Tenant B")
    b_owner = MembershipFactory(workspace=workspace_b, role="owner")
    b_member = MembershipFactory(workspace=workspace_b, role="member")
    invitation, _ = services.invitation_create(
        actor=b_owner, email="b-invitee@example.com", role="member"
    )
    return {"membership": b_member, "invitation": invitation, "workspace": workspace_b}


def _b_urls(b):
    m, inv = b["membership"].pk, b["invitation"].pk
    return [
        ("get", f"/workspace/members/{m}/remove/", {}),
        ("post", f"/workspace/members/{m}/remove/", {}),
        ("post", f"/workspace/members/{m}/role/", {"role": "admin"}),
        ("post", f"/workspace/invitations/{inv}/resend/", {}),
        ("get", f"/workspace/invitations/{inv}/revoke/", {}),
        ("post", f"/workspace/invitations/{inv}/revoke/", {}),
        ("post", f"/invitations/{inv}/join/", {}),
    ]


@pytest.mark.parametrize("role", ["owner", "admin", "member", "finance"])
def test_every_workspace_b_object_is_404_for_a_member_of_a(client, make_member, b_objects, role):
    a_member = make_member(role=role)
    client.force_login(a_member.user)
    for method, url, data in _b_urls(b_objects):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
    # Nothing in B changed.
    b_member = Membership.objects.get(pk=b_objects["membership"].pk)
    assert b_member.role == "member"
    invitation = Invitation.objects.get(pk=b_objects["invitation"].pk)
    assert invitation.is_open and invitation.token_hash == b_objects["invitation"].token_hash


def test_b_members_are_not_listed_nor_transferable_from_a(client, owner, workspace, b_objects):
    client.force_login(owner)
    members_page = client.get("/workspace/members/").content.decode()
    assert b_objects["membership"].user.email not in members_page
    assert "b-invitee@example.com" not in members_page
    response = client.post(
        "/workspace/transfer/", {"new_owner": b_objects["membership"].pk, "confirm": "on"}
    )
    assert response.status_code == 200  # form error, nothing done
    assert Membership.objects.get(pk=b_objects["membership"].pk).role == "member"
    response = client.post("/workspaces/", {"workspace": b_objects["workspace"].pk}, follow=True)
    assert response.context["current_workspace"] == workspace

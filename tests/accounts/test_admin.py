"""Operator admin: lists, search, filters and the suspend actions."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AuditEvent, User, Workspace
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = User.objects.create_superuser("ops@example.com", "ops-pass-123456")
    client.force_login(operator)
    return client


def test_changelists_search_and_filters_render(operator_client, workspace, owner):
    _, _ = services.invitation_create(
        actor=owner.memberships.get(), email="pending@example.com", role="member"
    )
    for url in [
        "/admin/accounts/user/",
        f"/admin/accounts/user/?q={owner.email}",
        "/admin/accounts/user/?is_suspended__exact=1",
        "/admin/accounts/workspace/",
        "/admin/accounts/workspace/?q=Workspace",
        f"/admin/accounts/workspace/{workspace.pk}/change/",
        f"/admin/accounts/user/{owner.pk}/change/",
        "/admin/accounts/membership/?role__exact=owner",
        "/admin/accounts/invitation/?status=pending",
        "/admin/accounts/invitation/?status=expired",
        "/admin/accounts/invitation/?q=pending",
        "/admin/accounts/auditevent/",
    ]:
        response = operator_client.get(url)
        assert response.status_code == 200, url
    listing = operator_client.get("/admin/accounts/workspace/").content.decode()
    assert workspace.name in listing and owner.email in listing  # owners column
    invitations = operator_client.get("/admin/accounts/invitation/?status=pending").content
    assert b"pending@example.com" in invitations


def test_suspend_users_asks_for_a_reason_then_suspends(operator_client):
    user = UserFactory()
    data = {"action": "suspend_users", "_selected_action": [user.pk]}
    page = operator_client.post("/admin/accounts/user/", data)
    assert page.status_code == 200 and b"reason" in page.content
    user.refresh_from_db()
    assert not user.is_suspended  # nothing until the reason is given
    operator_client.post(
        "/admin/accounts/user/", {**data, "apply": "1", "reason": "Sharing the account."}
    )
    user.refresh_from_db()
    assert user.is_suspended and user.suspended_reason == "Sharing the account."
    assert AuditEvent.objects.filter(action="user.suspended", actor__email="ops@example.com")
    operator_client.post(
        "/admin/accounts/user/", {"action": "unsuspend_users", "_selected_action": [user.pk]}
    )
    user.refresh_from_db()
    assert not user.is_suspended


def test_suspend_workspaces(operator_client):
    ws = MembershipFactory().workspace
    operator_client.post(
        "/admin/accounts/workspace/",
        {
            "action": "suspend_workspaces",
            "_selected_action": [ws.pk],
            "apply": "1",
            "reason": "Abuse report #42.",
        },
    )
    ws = Workspace.objects.get(pk=ws.pk)
    assert ws.is_suspended and ws.suspended_reason == "Abuse report #42."


def test_ticking_suspended_in_the_change_form_goes_through_the_service(operator_client):
    ws = MembershipFactory().workspace
    response = operator_client.post(
        f"/admin/accounts/workspace/{ws.pk}/change/",
        {
            "name": ws.name,
            "is_suspended": "on",
            "suspended_reason": "Manual review.",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": ws.memberships.get().pk,
            "memberships-0-workspace": ws.pk,
            "memberships-0-user": ws.memberships.get().user_id,
            "memberships-0-role": "owner",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ws.refresh_from_db()
    assert ws.is_suspended and ws.suspended_at and ws.suspended_reason == "Manual review."
    assert AuditEvent.objects.filter(action="workspace.suspended", workspace=ws).exists()

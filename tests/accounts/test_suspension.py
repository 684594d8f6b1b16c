"""Operators suspend a user or a workspace: every page and API call answers
403 workspace_suspended, and the login page says why."""

from __future__ import annotations

import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts import services
from accounts.models import Membership
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PAGES = ["/dashboard/", "/workspace/members/", "/workspace/settings/", "/workspaces/"]


def test_suspended_user_gets_403_on_pages_and_api(client, owner):
    services.user_suspend(user=owner, reason="Reselling access is not allowed.", operator=None)
    client.force_login(owner)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Reselling access is not allowed." in response.content
    api = client.get("/api/v1/quota")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "workspace_suspended"
    assert "Reselling" in api.json()["error"]["message"]
    assert client.get("/accounts/logout/").status_code == 200  # can still log out


def test_suspended_workspace_blocks_its_members_but_not_other_workspaces(
    client, workspace, owner, make_member
):
    services.workspace_suspend(workspace=workspace, reason="Unpaid invoices.", operator=None)
    client.force_login(owner)
    response = client.get("/dashboard/")
    assert response.status_code == 403 and b"Unpaid invoices." in response.content
    assert client.post("/api/v1/keys").json()["error"]["code"] == "workspace_suspended"
    services.workspace_unsuspend(workspace=workspace, operator=None)
    assert client.get("/dashboard/").status_code == 200


def test_login_page_says_why_a_suspended_user_cannot_sign_in(client, owner):
    services.user_suspend(user=owner, reason="Chargeback fraud.", operator=None)
    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your account is suspended: Chargeback fraud." in page
    assert "_auth_user_id" not in client.session


class _Probe(APIView):
    def get(self, request):
        return Response({"workspace": request.workspace.pk})


def test_the_api_permission_refuses_suspended_users_and_workspaces(workspace, owner):
    factory = APIRequestFactory()

    def call():
        request = factory.get("/api/v1/probe")
        force_authenticate(request, user=owner)
        request.workspace, request.membership = workspace, owner.memberships.get()
        return _Probe.as_view()(request)

    assert call().data == {"workspace": workspace.pk}
    services.workspace_suspend(workspace=workspace, reason="Abuse.", operator=None)
    response = call()
    assert response.status_code == 403
    assert response.data["error"]["code"] == "workspace_suspended"
    services.workspace_unsuspend(workspace=workspace, operator=None)
    owner.refresh_from_db()
    services.user_suspend(user=owner, reason="Fraud.", operator=None)
    assert call().data["error"]["code"] == "workspace_suspended"


def test_members_of_a_suspended_workspace_may_switch_to_another(
    client, workspace, owner, make_member
):
    other = make_member(role="member")
    Membership.objects.create(workspace=workspace, user=other.user, role="member")
    services.workspace_suspend(workspace=workspace, reason="Abuse.", operator=None)
    client.force_login(other.user)
    client.post("/workspaces/", {"workspace": workspace.pk})
    page = client.get("/dashboard/")
    assert page.status_code == 403 and b"Switch workspace" in page.content
    assert client.get("/workspaces/new/").status_code == 403  # no new workspace to dodge it
    response = client.post("/workspaces/", {"workspace": other.workspace_id}, follow=True)
    assert response.status_code == 200
    assert response.context["current_workspace"] == other.workspace

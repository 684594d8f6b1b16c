"""Workspace, member and invitation pages through Django's test client."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, Invitation, Membership
from accounts.selectors import SESSION_WORKSPACE_KEY
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_every_page_renders_for_an_owner(owner_client):
    for url in [
        "/dashboard/",
        "/workspaces/",
        "/workspaces/new/",
        "/workspace/settings/",
        "/workspace/members/",
        "/workspace/transfer/",
        "/workspace/leave/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/2fa/",
    ]:
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert b"Tollgate" in response.content


def test_anonymous_pages_render(client):
    for url in ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get("/dashboard/").status_code == 302


def test_create_and_switch_workspaces(owner_client, workspace):
    response = owner_client.post("/workspaces/new/", {"name": "Second"}, follow=True)
    assert "Second" in _messages(response)
    second = Membership.objects.get(workspace__name="Second").workspace
    assert owner_client.session[SESSION_WORKSPACE_KEY] == second.pk
    assert response.context["current_workspace"] == second
    response = owner_client.post("/workspaces/", {"workspace": workspace.pk}, follow=True)
    assert response.context["current_workspace"] == workspace
    listing = owner_client.get("/workspaces/").content.decode()
    assert "Second" in listing and workspace.name in listing


def test_switching_to_a_workspace_you_are_not_in_is_refused(owner_client, make_member):
    foreign = make_member().workspace
    response = owner_client.post("/workspaces/", {"workspace": foreign.pk}, follow=True)
    assert "not a member" in _messages(response)
    assert response.context["current_workspace"] != foreign


def test_rename(owner_client, workspace):
    response = owner_client.post("/workspace/settings/", {"name": "Acme"}, follow=True)
    assert "renamed" in _messages(response)
    workspace.refresh_from_db()
    assert workspace.name == "Acme"


def test_a_member_cannot_rename_or_manage(client, workspace, owner, make_member):
    member = make_member(workspace=workspace, role="member")
    client.force_login(member.user)
    page = client.get("/workspace/settings/").content.decode()
    assert "Only owners and admins can rename" in page
    assert "Recent activity" not in page
    response = client.post("/workspace/settings/", {"name": "Hacked"}, follow=True)
    assert "Only owners and admins" in _messages(response)
    members_page = client.get("/workspace/members/").content.decode()
    assert "Invite a teammate" not in members_page
    response = client.post("/workspace/invitations/", {"email": "x@example.com", "role": "member"})
    assert not Invitation.objects.exists()
    owner_m = Membership.objects.get(user=owner)
    response = client.post(f"/workspace/members/{owner_m.pk}/remove/", follow=True)
    assert "Only owners and admins" in _messages(response)
    assert Membership.objects.filter(pk=owner_m.pk).exists()


def test_invite_resend_revoke_through_the_members_page(
    owner_client, workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/workspace/invitations/", {"email": "mate@example.com", "role": "admin"}, follow=True
        )
    assert "Invitation sent to mate@example.com" in _messages(response)
    invitation = Invitation.objects.get()
    assert "mate@example.com" in response.content.decode()  # listed as pending
    first_link = re.search(r"http://testserver/invitations/\S+/", mail.outbox[0].body).group(0)
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(f"/workspace/invitations/{invitation.pk}/resend/")
    assert len(mail.outbox) == 2
    assert owner_client.get(first_link.replace("http://testserver", "")).status_code == 404
    confirm = owner_client.get(f"/workspace/invitations/{invitation.pk}/revoke/")
    assert b"Revoke the invitation" in confirm.content
    invitation.refresh_from_db()
    assert invitation.revoked_at is None  # GET only asks
    response = owner_client.post(f"/workspace/invitations/{invitation.pk}/revoke/", follow=True)
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert "No pending invitations" in response.content.decode()


def test_invalid_invitation_input_is_explained(owner_client):
    response = owner_client.post(
        "/workspace/invitations/", {"email": "not-an-email", "role": "member"}, follow=True
    )
    assert "valid email" in _messages(response)
    assert not Invitation.objects.exists()


def test_change_role_and_remove_with_confirmation(owner_client, workspace, make_member):
    member = make_member(workspace=workspace, role="member")
    response = owner_client.post(
        f"/workspace/members/{member.pk}/role/", {"role": "admin"}, follow=True
    )
    assert "is now Admin" in _messages(response)
    member.refresh_from_db()
    assert member.role == "admin"
    confirm = owner_client.get(f"/workspace/members/{member.pk}/remove/")
    assert confirm.status_code == 200 and b"confirm-button" in confirm.content
    assert Membership.objects.filter(pk=member.pk).exists()
    response = owner_client.post(f"/workspace/members/{member.pk}/remove/", follow=True)
    assert "was removed" in _messages(response)
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_last_owner_cannot_leave_but_a_member_can(owner_client, workspace, make_member):
    client = Client()
    response = owner_client.post("/workspace/leave/", follow=True)
    assert "last owner" in _messages(response)
    member = make_member(workspace=workspace, role="member")
    client.force_login(member.user)
    response = client.post("/workspace/leave/", follow=True)
    assert "You left" in _messages(response)
    assert "not in any workspace" in response.content.decode()


def test_transfer_ownership_page(owner_client, workspace, owner, make_member):
    member = make_member(workspace=workspace, role="member")
    response = owner_client.post(
        "/workspace/transfer/", {"new_owner": member.pk, "confirm": "on"}, follow=True
    )
    assert "is now an owner" in _messages(response)
    assert Membership.objects.get(user=owner).role == "admin"
    assert Membership.objects.get(pk=member.pk).role == "owner"
    assert AuditEvent.objects.filter(action="workspace.ownership_transferred").exists()


def test_an_existing_user_accepts_an_invitation_without_a_second_account(
    owner_client, workspace, django_capture_on_commit_callbacks
):
    client = Client()
    existing = UserFactory(email="existing@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            "/workspace/invitations/", {"email": "existing@example.com", "role": "member"}
        )
    path = re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[0].body).group(1)
    page = client.get(path).content.decode()
    assert "Log in to accept" in page
    client.force_login(existing)
    # The dashboard also offers it (same verified address, no token needed).
    assert "Invitations for you" in client.get("/workspaces/").content.decode()
    response = client.post(path, follow=True)
    assert "Welcome to" in _messages(response)
    assert response.context["current_workspace"] == workspace
    assert Membership.objects.filter(user=existing, workspace=workspace, role="member").exists()
    assert client.get(path).status_code == 410  # single use


def test_signed_in_as_someone_else_cannot_accept(owner_client, django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post("/workspace/invitations/", {"email": "right@example.com"})
    path = re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[0].body).group(1)
    wrong = UserFactory(email="wrong@example.com")
    client.force_login(wrong)
    page = client.get(path).content.decode()
    assert "but you are signed in as" in page
    client.post(path)
    assert not Membership.objects.filter(user=wrong).exists()
    assert Invitation.objects.get().is_open


def test_unknown_invitation_token_is_a_friendly_404(client):
    response = client.get("/invitations/nonsense-token/")
    assert response.status_code == 404
    assert b"doesn't work" in response.content


def test_invitation_sending_is_rate_limited_per_workspace(owner_client, settings):
    settings.TOLLGATE_INVITATIONS_PER_HOUR = 2
    for n in range(2):
        owner_client.post("/workspace/invitations/", {"email": f"p{n}@example.com"})
    response = owner_client.post(
        "/workspace/invitations/", {"email": "p9@example.com"}, follow=True
    )
    assert "a lot of invitations" in _messages(response)
    assert Invitation.objects.count() == 2


@pytest.mark.django_db(transaction=True)  # real commits: the email goes out on commit
def test_a_mail_server_failure_is_explained_and_the_invitation_kept(owner_client, settings):
    # A real SMTP backend pointed at a closed local port: the send fails for real.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    response = owner_client.post(
        "/workspace/invitations/", {"email": "late@example.com"}, follow=True
    )
    assert "could not be sent" in _messages(response)
    assert Invitation.objects.get().email == "late@example.com"


def test_profile_name(owner_client, owner):
    assert owner_client.get("/profile/").status_code == 200
    response = owner_client.post("/profile/", {"name": "  Ada   Lovelace "}, follow=True)
    assert "Profile saved." in _messages(response)
    owner.refresh_from_db()
    assert owner.name == "Ada Lovelace" and owner.display_name == "Ada Lovelace"


def test_dashboard_points_to_the_features_usage_and_billing(client, owner):
    client.force_login(owner)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    for path in ["/summarize/", "/extract/", "/chat/", "/usage/", "/billing/", "/keys/"]:
        assert f'href="{path}"'.encode() in response.content, path

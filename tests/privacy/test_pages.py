"""Pages: admin login through allauth (its rate limit), sessions, the
re-authenticated account deletion, the workspace deletion page."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_admin_login_is_the_customer_login_with_its_rate_limit(client):
    staff = UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    # Posting a correct password straight to /admin/login/ does nothing but redirect.
    direct = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert direct.status_code == 302 and "_auth_user_id" not in client.session

    for _ in range(30):
        client.post("/accounts/login/", {"login": staff.email, "password": "wrong-password"})
    client.post("/accounts/login/", {"login": staff.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_admin_login_works_for_staff_through_allauth(client):
    staff = UserFactory(email="operator2@example.com", is_staff=True, is_superuser=True)
    response = client.post(
        "/accounts/login/?next=/admin/", {"login": staff.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_sessions_page_lists_and_signs_out_others(client):
    from allauth.usersessions.models import UserSession

    user = UserFactory(email="sessions@example.com")
    other_browser = type(client)()
    other_browser.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert UserSession.objects.filter(user=user).count() == 2
    page = client.get("/accounts/sessions/")
    assert page.status_code == 200
    client.post("/accounts/sessions/", {"action": "logout"})
    assert UserSession.objects.filter(user=user).count() == 1
    assert "_auth_user_id" in client.session
    assert other_browser.get("/dashboard/").status_code == 302  # signed out


def test_account_deletion_asks_to_reauthenticate_then_for_the_email(client):
    user = UserFactory(email="leaver@example.com")
    MembershipFactory(user=user, role="member")
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    # A fresh login counts as recent authentication; make it old.
    session = client.session
    session["account_authentication_methods"] = [{"method": "password", "at": 0}]
    session.save()
    response = client.post("/account/delete/", {"confirmation": user.email})
    assert response.status_code == 302 and "/accounts/reauthenticate/" in response["Location"]
    assert User.objects.get(pk=user.pk).is_active
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    wrong = client.post("/account/delete/", {"confirmation": "nope"})
    assert "Type your email" in wrong.content.decode()
    done = client.post("/account/delete/", {"confirmation": user.email})
    assert done.status_code == 302
    assert not User.objects.get(pk=user.pk).is_active
    assert "_auth_user_id" not in client.session


def test_account_deletion_page_explains_the_last_owner_refusal(client):
    user = UserFactory(email="lastowner@example.com")
    MembershipFactory(user=user, role="owner", workspace__name="Only Mine")
    client.force_login(user)
    page = client.get("/account/privacy/").content.decode()
    assert "last owner of “Only Mine”" in page and "transfer ownership" in page


def test_workspace_delete_page_says_what_will_be_charged_and_needs_the_name(client, tiers):
    owner = MembershipFactory(role="owner", workspace__name="Page Co")
    client.force_login(owner.user)
    page = client.get("/workspace/delete/").content.decode()
    assert "free plan: nothing will be charged" in page
    client.post("/workspace/delete/", {"confirmation": "wrong", "when": "now"})
    assert not owner.workspace.policy.deletion_pending
    client.post("/workspace/delete/", {"confirmation": "Page Co", "when": "period_end"})
    owner.workspace.policy.refresh_from_db()
    assert owner.workspace.policy.deletion_pending
    assert "Undo the deletion" in client.get("/workspace/privacy/").content.decode()
    client.post("/workspace/delete/undo/")
    owner.workspace.policy.refresh_from_db()
    assert not owner.workspace.policy.deletion_pending
    member = MembershipFactory(workspace=owner.workspace, role="admin")
    client.force_login(member.user)
    assert client.get("/workspace/delete/").status_code == 403


def test_privacy_statement_is_public(client):
    page = client.get("/privacy/").content.decode()
    assert "Kept until you delete them" in page and "30 days" in page and "10 years" in page

"""allauth flows end to end through the test client: sign-up with mandatory
verification, invitations carried through sign-up, password reset and change,
email change, login rate limiting, TOTP two-factor and recovery codes."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts import services
from accounts.models import Membership, User
from tests.fixtures.accounts import totp_code as _code

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-passphrase-42"


def _link(message, pattern=r"https?://testserver(/\S+)") -> str:
    return re.search(pattern, message.body).group(1)


def _signup(client: Client, email: str):
    return client.post(
        "/accounts/signup/",
        {"email": email, "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )


def test_signup_requires_verification_then_creates_a_workspace(client):
    response = _signup(client, "new@example.com")
    assert b"Check your email" in response.content
    user = User.objects.get(email="new@example.com")
    assert "_auth_user_id" not in client.session  # not signed in before verifying
    (message,) = mail.outbox
    assert message.to == ["new@example.com"]
    html = message.alternatives[0][0]
    assert "Confirm and sign in" in html and "Tollgate" in html
    # Login is refused until the address is verified.
    client.post("/accounts/login/", {"login": "new@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    confirm_path = _link(mail.outbox[0])
    page = client.get(confirm_path)
    assert b"Confirm" in page.content
    response = client.post(confirm_path, follow=True)
    assert response.context["user"] == user
    assert response.context["current_workspace"].name == "new's workspace"
    assert Membership.objects.get(user=user).role == "owner"


def test_a_new_person_signs_up_through_an_invitation_and_joins_after_verifying(
    client, workspace, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(
            actor=owner.memberships.get(), email="mate@example.com", role="admin"
        )
    invite_path = re.search(r"http://[^/]+(/invitations/\S+/)", mail.outbox[0].body).group(1)
    landing = client.get(invite_path).content.decode()
    assert "Create an account" in landing
    signup_page = client.get("/accounts/signup/?email=mate@example.com").content.decode()
    assert 'value="mate@example.com"' in signup_page
    assert "invited to join" in signup_page
    with django_capture_on_commit_callbacks(execute=True):
        _signup(client, "mate@example.com")
    mate = User.objects.get(email="mate@example.com")
    assert not mate.memberships.exists()  # no stray personal workspace
    verify_path = _link(mail.outbox[-1])
    response = client.post(verify_path, follow=True)
    # Carried back to the invitation, which joins at once (no second click).
    assert (invite_path, 302) in response.redirect_chain
    assert response.context["current_workspace"] == workspace
    assert Membership.objects.get(user=mate).role == "admin"


def test_signing_up_with_another_address_than_invited_gets_its_own_workspace(
    client, workspace, owner
):
    _, token = services.invitation_create(
        actor=owner.memberships.get(), email="invited@example.com", role="member"
    )
    client.get(f"/invitations/{token}/")
    _signup(client, "different@example.com")
    assert User.objects.get(email="different@example.com").memberships.count() == 1


def test_password_reset_by_email(client, owner):
    client.post("/accounts/password/reset/", {"email": owner.email})
    (message,) = mail.outbox
    assert "Reset your password" in message.subject
    assert "Choose a new password" in message.alternatives[0][0]
    path = _link(message)
    response = client.get(path, follow=True)  # allauth swaps the key for a session
    form_path = response.request["PATH_INFO"]
    response = client.post(
        form_path, {"password1": "brand-New-pass-99", "password2": "brand-New-pass-99"}
    )
    assert response.status_code == 302
    fresh = Client()
    fresh.post("/accounts/login/", {"login": owner.email, "password": "brand-New-pass-99"})
    assert "_auth_user_id" in fresh.session


def test_password_change(client, owner, password):
    client.force_login(owner)
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": password, "password1": "changed-Pass-77", "password2": "changed-Pass-77"},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("changed-Pass-77")
    (notice,) = mail.outbox  # a security notice, text + HTML
    assert "Your password was changed" in notice.alternatives[0][0]


def test_email_change_replaces_the_login_after_verification(client, owner):
    client.force_login(owner)
    client.post("/accounts/email/", {"action_add": "", "email": "renamed@example.com"})
    message = mail.outbox[-1]
    assert message.to == ["renamed@example.com"]
    client.post(_link(message))
    owner.refresh_from_db()
    assert owner.email == "renamed@example.com"


def test_login_is_rate_limited_after_repeated_failures(client, owner):
    for _ in range(5):
        client.post("/accounts/login/", {"login": owner.email, "password": "wrong"})
    response = client.post("/accounts/login/", {"login": owner.email, "password": "wrong"})
    assert b"Too many failed login attempts" in response.content


def test_totp_enrolment_and_login_with_a_code_or_a_recovery_code(client, owner, password, settings):
    settings.MFA_TOTP_TOLERANCE = 1  # the next period's code is accepted too
    client.post("/accounts/login/", {"login": owner.email, "password": password})
    response = client.get("/accounts/2fa/totp/activate/")
    # Security changes ask for the password again.
    assert response["Location"].startswith("/accounts/reauthenticate/")
    client.post(response["Location"], {"password": password})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    assert secret in page.content.decode()  # shown for manual entry, beside the QR code
    response = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert b"Incorrect code" in response.content
    response = client.post("/accounts/2fa/totp/activate/", {"code": _code(secret)}, follow=True)
    assert response.status_code == 200
    codes_page = client.get("/accounts/2fa/recovery-codes/").content.decode()
    recovery = re.findall(r"\b[0-9a-f]{8}\b", codes_page)
    assert recovery, "recovery codes are listed"
    client.post("/accounts/logout/")

    # Password alone is not enough any more.
    response = client.post("/accounts/login/", {"login": owner.email, "password": password})
    assert response["Location"].startswith("/accounts/2fa/authenticate/")
    assert "_auth_user_id" not in client.session
    client.post("/accounts/2fa/authenticate/", {"code": "123456"})
    assert "_auth_user_id" not in client.session
    client.post("/accounts/2fa/authenticate/", {"code": _code(secret, 1)})
    assert client.session["_auth_user_id"] == str(owner.pk)
    client.post("/accounts/logout/")

    # A recovery code works once.
    client.post("/accounts/login/", {"login": owner.email, "password": password})
    client.post("/accounts/2fa/authenticate/", {"code": recovery[0]})
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_signing_up_again_with_a_taken_address_makes_no_second_account(client, owner):
    response = _signup(client, owner.email)
    assert b"Check your email" in response.content  # no account enumeration
    assert User.objects.filter(email__iexact=owner.email).count() == 1
    (message,) = mail.outbox
    assert "already uses this address" in message.body
    assert "Reset your password" in message.alternatives[0][0]


def test_password_reset_for_an_unknown_address_says_so_by_email(client):
    client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    (message,) = mail.outbox
    assert "there is no account" in message.body
    assert "/accounts/signup/" in message.alternatives[0][0]

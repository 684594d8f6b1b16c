"""An owner requires two-factor authentication; a member without it is sent to
enrol before anything else, and gets in once enrolled (real browser)."""

from __future__ import annotations

import time

import pytest

from tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures.accounts import totp_code


def at_enrolment(url: str) -> bool:
    """The TOTP set-up page, or allauth's password confirmation in front of it."""
    return "/accounts/2fa/totp/activate/" in url or (
        "/accounts/reauthenticate/" in url and "2fa%2Ftotp%2Factivate" in url
    )


def enrol_totp(page) -> None:
    if "/accounts/reauthenticate/" in page.url:  # allauth confirms the password first
        page.fill("input[name=password]", PASSWORD)
        page.locator("main button[type=submit]").click()
        page.wait_for_url("**/accounts/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").input_value()
    if 30 - time.time() % 30 < 3:  # a code about to expire: wait for the next one
        time.sleep(30 - time.time() % 30 + 0.2)
    page.fill("input[name=code]", totp_code(secret))
    page.locator("main button[type=submit]").click()
    # The activation is a form post: wait for it to land before navigating on.
    page.wait_for_url(lambda url: "/2fa/totp/activate/" not in url)


@pytest.mark.browser
def test_required_mfa_sends_members_to_enrol_first(live_url, page, login_page):
    workspace = WorkspaceFactory(name="Strict Co")
    owner = MembershipFactory(workspace=workspace, role="owner", user=UserFactory()).user
    member = MembershipFactory(workspace=workspace, role="member", user=UserFactory()).user

    login_page(owner)
    page.goto(f"{live_url}/workspace/privacy/")
    page.check("input[name=require_mfa]")
    page.get_by_test_id("save-policy").click()
    # The owner has no authenticator either: the rule applies to them at once.
    page.wait_for_url(at_enrolment)
    assert "requires two-factor authentication" in page.content()
    enrol_totp(page)
    page.goto(f"{live_url}/workspace/privacy/")
    assert page.url.endswith("/workspace/privacy/")
    assert page.locator("input[name=require_mfa]").is_checked()

    other = page.context.browser.new_context()
    try:
        tab = other.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(f"{live_url}/accounts/login/")
        tab.fill("input[name=login]", member.email)
        tab.fill("input[name=password]", PASSWORD)
        tab.locator("main button[type=submit]").click()
        tab.wait_for_url(at_enrolment)
        for path in ("/dashboard/", "/usage/", "/workspace/members/"):
            tab.goto(f"{live_url}{path}")
            assert at_enrolment(tab.url), path
        # Session API calls are refused too (API keys are not a login and stay unaffected).
        refused = tab.evaluate(
            "fetch('/api/v1/usage').then(r => r.json().then(b => [r.status, b.error.code]))"
        )
        assert refused == [403, "mfa_required"]
        enrol_totp(tab)
        tab.goto(f"{live_url}/dashboard/")
        assert tab.url.endswith("/dashboard/")
    finally:
        other.close()

"""Real headless Chromium against the ASGI server: sign up → verify the emailed
link → invite a teammate → the teammate signs up through the invitation →
both see the workspace."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PASSWORD = "a-Long-passphrase-42"


def test_signup_page_renders_in_chromium(live_url, page):
    page.goto(f"{live_url}/accounts/signup/")
    assert page.locator("input[name=email]").is_visible()
    # Vendored CSS is served (no CDN): the stylesheet loaded.
    assert page.evaluate("document.styleSheets.length") >= 2


def _last_link(to: str, pattern: str) -> str:
    messages = [m for m in mail.outbox if to in m.to]
    assert messages, f"no email to {to}"
    return re.search(pattern, messages[-1].body).group(0)


def _sign_up(page, email: str) -> None:
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    if not page.input_value("input[name=email]"):
        page.fill("input[name=email]", email)
    page.locator("main").get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()


def _verify(page, email: str) -> None:
    page.goto(_last_link(email, r"http://\S+/accounts/confirm-email/\S+"))
    page.get_by_role("button", name="Confirm").click()


def test_signup_verify_invite_and_teammate_joins(live_url, sized_page, browser, shoot):
    page = sized_page
    # The founder signs up and verifies the emailed link.
    page.goto(f"{live_url}/accounts/signup/")
    page.fill("input[name=email]", "founder@example.com")
    _sign_up(page, "founder@example.com")
    _verify(page, "founder@example.com")
    expect(page.get_by_test_id("workspace-name")).to_have_text("founder's workspace")

    # ... renames the workspace and invites a teammate.
    page.goto(f"{live_url}/workspace/settings/")
    page.fill("input[name=name]", "Acme Research")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_text("Workspace renamed.")).to_be_visible()
    page.goto(f"{live_url}/workspace/members/")
    page.fill("[data-testid=invite-form] input[name=email]", "mate@example.com")
    page.select_option("[data-testid=invite-form] select[name=role]", "admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to mate@example.com.")).to_be_visible()
    expect(page.get_by_test_id("invitations-table")).to_contain_text("mate@example.com")

    # The teammate, in their own browser, follows the invitation and signs up.
    mate = browser.new_context(viewport=page.viewport_size).new_page()
    mate.width_name = page.width_name
    mate.set_default_timeout(15_000)
    mate.goto(_last_link("mate@example.com", r"http://\S+/invitations/\S+/"))
    expect(mate.get_by_role("heading", name="Join Acme Research")).to_be_visible()
    mate.get_by_test_id("invitation-signup").click()
    expect(mate.get_by_test_id("invitation-banner")).to_contain_text("Acme Research")
    assert mate.input_value("input[name=email]") == "mate@example.com"
    _sign_up(mate, "mate@example.com")
    _verify(mate, "mate@example.com")
    # Verified: they join at once, as the invitation page promised (no extra click).
    expect(mate.get_by_text("Welcome to Acme Research!")).to_be_visible()
    expect(mate.get_by_test_id("workspace-name")).to_have_text("Acme Research")
    expect(mate.get_by_test_id("my-role")).to_have_text("Admin")
    shoot(mate, "invited-teammate-dashboard")

    # Both see the workspace and each other.
    page.goto(f"{live_url}/workspace/members/")
    expect(page.get_by_test_id("members-table")).to_contain_text("mate@example.com")
    expect(page.get_by_text("No pending invitations.")).to_be_visible()
    mate.goto(f"{live_url}/workspace/members/")
    expect(mate.get_by_test_id("members-table")).to_contain_text("founder@example.com")
    mate.context.close()


def test_login_page_fixture_signs_in(login_page, owner, workspace):
    page = login_page(owner)
    expect(page.get_by_test_id("workspace-name")).to_have_text(workspace.name)

"""The keys page in real Chromium: create (secret shown once), list, revoke
with confirmation."""

from __future__ import annotations

import pytest

from usage.models import ApiKey, hash_secret

pytestmark = pytest.mark.browser


def test_create_and_revoke_a_key_in_the_browser(live_url, page, make_member, login_browser):
    member = make_member()
    login_browser(page, live_url, member.user)

    page.goto(f"{live_url}/keys/")
    assert "No API keys yet" in page.content()
    page.get_by_test_id("new-key-toggle").click()
    page.fill("input[name=name]", "Laptop script")
    page.fill("input[name=token_cap]", "5000")
    page.get_by_role("button", name="Create key").click()

    secret = page.get_by_test_id("new-secret").inner_text().strip()
    assert secret.startswith("tg_live_")
    key = ApiKey.objects.get()
    assert key.key_hash == hash_secret(secret) and key.token_cap == 5000
    assert page.get_by_test_id("copy-secret").is_visible()

    page.goto(f"{live_url}/keys/")  # shown once: not on the next visit
    assert secret not in page.content()
    assert page.get_by_test_id("key-row").count() == 1

    page.get_by_test_id("revoke-link").click()
    page.get_by_test_id("confirm-revoke").click()
    assert "Revoked" in page.content()
    key.refresh_from_db()
    assert key.revoked_at is not None

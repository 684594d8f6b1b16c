"""In real Chromium: a person takes their data (export ZIP with progress, then
the download) and leaves (re-authenticated, typed email)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from accounts.models import User
from tests.factories import MembershipFactory
from tests.privacy.conftest import MARKER, fill_person

pytestmark = pytest.mark.browser


def test_a_person_exports_their_data_then_deletes_their_account(
    live_url, page, login_page, settings, tmp_path, person
):
    from allauth.mfa.models import Authenticator

    settings.MEDIA_ROOT = str(tmp_path / "media")
    Authenticator.objects.filter(user=person).delete()  # sign in with the password alone
    login_page(person)
    page.goto(f"{live_url}/account/privacy/")
    page.get_by_test_id("export-me").click()
    page.get_by_test_id("export-download").wait_for(state="visible", timeout=20_000)
    with page.expect_download() as download:
        page.get_by_test_id("export-download").click()
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        chats = json.loads(archive.read("chats.json"))
        assert MARKER in json.dumps(chats)
        assert {"profile.json", "usage_events.json", "manifest.json"} <= set(archive.namelist())

    page.get_by_test_id("delete-account").click()
    if "/accounts/reauthenticate/" in page.url:
        page.fill("input[name=password]", "correct-horse-battery-staple")
        page.locator("main button[type=submit]").click()
    page.fill("input[name=confirmation]", person.email)
    page.get_by_test_id("confirm-button").click()
    page.wait_for_url(f"{live_url}/")
    assert "Your account was deleted" in page.content()
    assert not User.objects.get(pk=person.pk).is_active


def test_the_last_owner_is_told_why_not(live_url, page, login_page):
    owner = MembershipFactory(role="owner", workspace__name="Mine Alone").user
    fill_person(owner, owner.memberships.get().workspace)
    login_page(owner)
    page.goto(f"{live_url}/account/privacy/")
    assert "last owner of “Mine Alone”" in page.get_by_test_id("delete-blocked").inner_text()

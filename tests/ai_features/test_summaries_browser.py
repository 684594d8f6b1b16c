"""Summarize in real headless Chromium: the page posts to the metered API with
the session (CSRF included) and shows the result and its usage."""

from __future__ import annotations

import pytest

from ai_features.models import Summary
from usage.models import UsageEvent

pytestmark = pytest.mark.browser


def test_summarize_in_the_browser(metered, page, make_member, login_browser):
    member = make_member()
    login_browser(page, metered, member.user)

    page.goto(f"{metered}/summarize/")
    page.fill("#text", "Tollgate meters every token. " * 20)
    page.select_option("select[name=length]", "short")
    page.select_option("select[name=format]", "bullets")
    page.click("#summarize-submit")

    result = page.get_by_test_id("summary-result")
    result.wait_for(state="visible")
    assert page.locator("#summary-text").inner_text().strip()
    assert "tokens" in page.locator("#summary-meta").inner_text()
    event = UsageEvent.objects.get()
    assert event.api_key_id is None and event.user_id == member.user_id
    assert Summary.objects.get().format == "bullets"


def test_the_page_shows_a_clear_error(metered, page, make_member, login_browser):
    login_browser(page, metered, make_member().user)
    page.goto(f"{metered}/summarize/")
    page.fill("#text", "Please summarize FLAGME now.")
    page.click("#summarize-submit")
    error = page.get_by_test_id("summary-error")
    error.wait_for(state="visible")
    assert "flagged" in error.inner_text()

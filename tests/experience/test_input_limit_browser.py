"""Summarize says its limit before, counts as you type, and refuses text over
the limit instead of cutting it (nothing sent, nothing charged) — 1280 and 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from usage.models import UsageEvent

pytestmark = pytest.mark.browser


def test_text_over_the_limit_is_refused_in_words(
    metered, signed_in_page, owner, settings, sized_page, shoot
):
    page = signed_in_page(owner)
    page.goto(f"{metered}/summarize/")
    expect(page.get_by_test_id("summarize-limits")).to_contain_text("200,000 characters")
    expect(page.get_by_test_id("summarize-limits")).to_contain_text("refused, never cut")
    page.fill("#text", "a" * 200_006)
    assert len(page.input_value("#text")) == 200_006  # not cut by the browser
    expect(page.get_by_test_id("text-count")).to_contain_text("6 too many")
    page.click("#summarize-submit")
    error = page.get_by_test_id("summary-error")
    expect(error).to_contain_text("200,006 characters; the limit is 200,000")
    expect(error).to_contain_text("nothing was sent or charged")
    shoot(page, "summarize-over-limit")
    assert not UsageEvent.objects.exists()

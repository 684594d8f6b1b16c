"""The three features in real headless Chromium against the real ASGI app and
the fake upstream: summarize, extract (table, downloads, history, a quota error
that links to the upgrade page), chat (streamed answer, Stop)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from ai_features.models_features import Extraction, Message
from usage.limits import bump_version
from usage.models import UsageEvent

pytestmark = pytest.mark.browser


def test_summarize(metered, signed_in_page, owner):
    page = signed_in_page(owner)
    page.goto(f"{metered}/summarize/")
    page.fill("#text", "Tollgate meters tokens. It bills in tiers. It asks before upgrading.")
    page.click("#summarize-submit")
    expect(page.get_by_test_id("summary-result")).to_be_visible()
    expect(page.locator("#summary-text")).to_contain_text("Tollgate meters tokens.")
    assert UsageEvent.objects.get().feature == "summarize"

    # A saved document is summarized from its page.
    page.goto(f"{metered}/documents/")
    expect(page.get_by_test_id("documents-empty")).to_be_visible()
    page.get_by_test_id("document-file").set_input_files(
        files=[
            {
                "name": "minutes.md",
                "mimeType": "text/markdown",
                "buffer": b"# Minutes\n\nThe board approved the budget.",
            }
        ]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_test_id("document-list")).to_contain_text("minutes.md")
    page.get_by_role("link", name="minutes.md").click()
    page.get_by_test_id("summarize-document").click()
    expect(page.get_by_test_id("document-summary")).to_contain_text(
        "The board approved the budget."
    )


def test_extract_table_downloads_history_and_quota_error(metered, signed_in_page, owner, settings):
    page = signed_in_page(owner)
    page.goto(f"{metered}/extract/")
    expect(page.get_by_test_id("recent-empty")).to_be_visible()
    page.fill(
        "#extract-text", "Invoice\nvendor: ACME Tools\ntotal: 99.5\ndue_date: 2026-04-01\npaid: no"
    )
    page.click("#example-fields")
    page.get_by_test_id("extract-submit").click()

    result = page.get_by_test_id("extract-result")
    expect(result).to_be_visible()
    expect(result.locator("tbody tr")).to_have_count(4)
    expect(result).to_contain_text("ACME Tools")
    expect(result).to_contain_text("2026-04-01")
    extraction = Extraction.objects.get()
    assert extraction.data == {
        "vendor": "ACME Tools",
        "total": 99.5,
        "due_date": "2026-04-01",
        "paid": False,
    }
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    assert download.value.suggested_filename == f"extraction-{extraction.pk}.csv"

    page.reload()
    expect(page.get_by_test_id("recent-runs").locator("tbody tr")).to_have_count(1)

    # Out of tokens: the error says so and links to the upgrade page.
    settings.TOLLGATE_DEFAULT_INCLUDED_TOKENS = 10
    bump_version()  # limits are cached per process behind a version key
    page.fill("#extract-text", "total: 1")
    page.click("#example-fields")
    page.get_by_test_id("extract-submit").click()
    error = page.get_by_test_id("extract-error")
    expect(error).to_be_visible()
    link = error.get_by_test_id("upgrade-link")
    expect(link).to_be_visible()
    assert link.get_attribute("href").endswith("/billing/upgrade/")


def test_chat_streams_and_stop_really_stops(metered, signed_in_page, owner):
    page = signed_in_page(owner)
    page.goto(f"{metered}/chat/")
    expect(page.get_by_test_id("chat-empty")).to_be_visible()
    page.get_by_test_id("new-chat").click()

    page.get_by_test_id("chat-input").fill("Hello there. Tell me about tokens.")
    page.get_by_test_id("chat-send").click()
    first = page.locator(".msg-assistant").first
    expect(first.locator("footer")).to_contain_text("tokens")  # the usage event arrived
    expect(first.locator(".msg-content")).to_have_text("Hello there. Tell me about tokens.")
    expect(page.get_by_test_id("chat-title")).to_have_text("Hello there. Tell me about tokens.")

    long_text = " ".join(f"word{i}" for i in range(150)) + ". [[fault:pace:25]]"
    page.get_by_test_id("chat-input").fill(long_text)
    page.get_by_test_id("chat-send").click()
    second = page.locator(".msg-assistant").nth(1)
    expect(second.locator(".msg-content")).to_contain_text("word3")  # text appears as it comes
    page.get_by_test_id("chat-stop").click()
    expect(second).to_contain_text("stopped")
    shown = second.locator(".msg-content").inner_text()
    assert len(shown) < len(long_text) - 100

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stopped = Message.objects.filter(status="stopped").first()
        if stopped and stopped.output_tokens:
            break
        time.sleep(0.1)
    event = UsageEvent.objects.get(request_id=stopped.request_id)
    assert stopped.output_tokens == event.output_tokens > 0
    assert stopped.content.startswith(shown.strip()[:20])

    # The saved conversation shows both answers and the stopped badge after a reload.
    page.reload()
    expect(page.locator(".msg-assistant")).to_have_count(2)
    expect(page.locator(".msg-assistant").nth(1)).to_contain_text("stopped")


def test_usage_dashboard_chart_renders_offline(live_url, signed_in_page, owner):
    from django.db.models import Sum

    from tests.ai_features.test_dashboard import event

    membership = owner.memberships.get()
    event(membership, tokens=(400, 0, 100))
    event(membership, feature="extract", tokens=(1000, 0, 234))
    page = signed_in_page(owner)
    page.goto(f"{live_url}/usage/")
    expect(page.get_by_test_id("daily-chart")).to_be_visible()
    page.wait_for_function("window.usageChart && window.usageChart.data.datasets.length === 2")
    total = UsageEvent.objects.aggregate(t=Sum("total_tokens"))["t"]
    expect(page.get_by_test_id("total-tokens")).to_have_text(f"{total:,}")
    charted = page.evaluate(
        "window.usageChart.data.datasets.reduce((s, d) => s + d.data.reduce((a, b) => a + b, 0), 0)"
    )
    assert charted == total

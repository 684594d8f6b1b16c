"""Chat Stop in Chromium at 1280 and 390 px: stopped mid-answer and before the
first token, the question stays, and the tokens shown are the ledger's."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from ai_features.models_features import Message
from usage.models import UsageEvent

pytestmark = pytest.mark.browser


def _ledger_total(request_id: str) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        event = UsageEvent.objects.filter(request_id=request_id).first()
        if event is not None:
            return event.total_tokens
        time.sleep(0.1)
    raise AssertionError("the stopped call was not recorded")


def test_stop_mid_answer_and_before_the_first_token(
    metered, signed_in_page, owner, sized_page, shoot
):
    page = signed_in_page(owner)
    page.goto(f"{metered}/chat/")
    page.get_by_test_id("new-chat").click()

    # Mid-answer.
    long_text = " ".join(f"word{i}" for i in range(150)) + ". [[fault:pace:25]]"
    page.get_by_test_id("chat-input").fill(long_text)
    page.get_by_test_id("chat-send").click()
    answer = page.locator(".msg-assistant").nth(0)
    expect(answer.locator(".msg-content")).to_contain_text("word3")
    page.get_by_test_id("chat-stop").click()
    expect(answer.locator("footer")).to_contain_text("tokens")
    stopped = Message.objects.get(role="assistant")
    total = _ledger_total(stopped.request_id)
    stopped.refresh_from_db()
    assert stopped.status == "stopped" and stopped.total_tokens == total
    expect(answer.locator("footer")).to_contain_text(f"{total:,} tokens")

    # Before the first token: the question and an empty stopped answer stay.
    page.get_by_test_id("chat-input").fill("Slow one? [[fault:delay:4000]]")
    page.get_by_test_id("chat-send").click()
    page.wait_for_timeout(700)
    page.get_by_test_id("chat-stop").click()
    second = page.locator(".msg-assistant").nth(1)
    expect(second.locator("footer")).to_contain_text("tokens")
    early = Message.objects.filter(role="assistant").order_by("pk").last()
    total = _ledger_total(early.request_id)
    expect(second.locator("footer")).to_contain_text(f"{total:,} tokens")
    shoot(page, "chat-stopped")

    page.reload()
    expect(page.locator(".msg-user")).to_have_count(2)
    expect(page.locator(".msg-user").nth(1)).to_contain_text("Slow one?")
    expect(page.locator(".msg-assistant").nth(1)).to_contain_text("stopped")
    expect(page.locator(".msg-assistant").nth(1).locator("footer")).to_contain_text(
        f"{total:,} tokens"
    )
    expect(page.get_by_test_id("chat-title")).to_contain_text("word0")

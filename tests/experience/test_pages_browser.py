"""The walk-throughs in Chromium at 1280 and 390 px: the usage page's figures
against the ledger and the quota API (no sideways scrolling on a phone), a
finance member's navigation, and styled 403/404 pages that offer a way on."""

from __future__ import annotations

import httpx
import pytest
from django.db.models import Sum
from playwright.sync_api import expect

from accounts.models import Membership
from tests.fixtures.experience import assert_no_horizontal_overflow
from usage.models import UsageEvent

pytestmark = pytest.mark.browser


def _number(page, testid: str) -> int:
    return int(page.get_by_test_id(testid).inner_text().replace(",", ""))


def test_every_usage_figure_equals_the_ledger_and_the_quota_api(
    metered, signed_in_page, owner, workspace, make_key, sized_page, shoot
):
    _key, secret = make_key(Membership.objects.get(user=owner, workspace=workspace), "script")
    headers = {"Authorization": f"Bearer {secret}"}
    for text in ("Tollgate meters tokens.", "It bills in tiers and asks first."):
        answer = httpx.post(
            f"{metered}/api/v1/summaries", json={"text": text}, headers=headers, timeout=30
        )
        assert answer.status_code == 201, answer.text
    quota = httpx.get(f"{metered}/api/v1/quota", headers=headers).json()
    ledger = UsageEvent.objects.filter(workspace=workspace).aggregate(
        total=Sum("total_tokens"), input=Sum("input_tokens"), output=Sum("output_tokens")
    )

    page = signed_in_page(owner)
    page.goto(f"{metered}/usage/")
    assert _number(page, "quota-used") == quota["used_tokens"] == ledger["total"]
    assert _number(page, "quota-included") == quota["included_tokens"]
    assert _number(page, "quota-remaining") == quota["remaining_tokens"]
    assert page.get_by_test_id("quota-percent").inner_text() == str(quota["percent_used"])
    assert _number(page, "total-tokens") == ledger["total"]
    assert _number(page, "total-input") == ledger["input"]
    assert _number(page, "total-output") == ledger["output"]
    assert _number(page, "total-requests") == 2
    breakdown = page.get_by_test_id("breakdown-member").locator("[data-tokens]")
    assert (
        sum(int(t) for t in breakdown.evaluate_all("els => els.map(e => e.dataset.tokens)"))
        == (ledger["total"])
    )
    expect(page.get_by_test_id("money")).to_contain_text("$")
    expect(page.get_by_test_id("trace").locator("tbody tr")).to_have_count(2)
    assert_no_horizontal_overflow(page)
    shoot(page, "usage")


def test_a_finance_members_navigation_and_the_error_pages(
    live_url, signed_in_page, workspace, owner, make_member, sized_page, shoot
):
    finance = make_member(workspace=workspace, role="finance").user
    page = signed_in_page(finance)
    page.goto(f"{live_url}/dashboard/")
    if page.width_name == "mobile":
        expect(page.get_by_test_id("main-nav")).to_be_hidden()
        # The header is one row: the menu sits beside the brand, above the content.
        shoot(page, "header")
        header = page.locator(".site-header nav").bounding_box()
        assert header["height"] < 90
        page.get_by_test_id("nav-menu").click()
        nav = page.get_by_test_id("nav-menu-links")
    else:
        expect(page.get_by_test_id("nav-menu")).to_be_hidden()
        nav = page.get_by_test_id("main-nav")
    expect(nav).to_be_visible()
    labels = [t.strip() for t in nav.locator("a").all_inner_texts()]
    assert labels == ["Dashboard", "Usage", "Billing", "Invoices"]
    shoot(page, "finance-nav")

    # A page the role can't open: styled, says why, whom to ask, the way back.
    page.goto(f"{live_url}/keys/")
    forbidden = page.get_by_test_id("error-403")
    expect(forbidden).to_contain_text("create and revoke API keys")
    expect(forbidden).to_contain_text("Finance")
    expect(forbidden.get_by_role("link", name=owner.email)).to_be_visible()
    expect(forbidden.get_by_test_id("go-back")).to_be_visible()
    page.goto(f"{live_url}/extract/")
    expect(page.get_by_test_id("not-allowed")).to_contain_text("can't run AI features")
    shoot(page, "forbidden")

    response = page.goto(f"{live_url}/no-such-page/")
    assert response.status == 404
    expect(page.get_by_test_id("error-404")).to_contain_text("/no-such-page/")
    expect(page.get_by_test_id("error-404").locator("a", has_text="Dashboard")).to_be_visible()
    assert_no_horizontal_overflow(page)
    shoot(page, "not-found")

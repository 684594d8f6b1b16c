"""The usage page's figures: the ledger, the quota (API) and each other agree,
to the second of the billing period; a projection waits for enough history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from usage.dashboard import project
from usage.limits import WorkspaceLimits
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

PERIOD_START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # an upgrade at noon
PERIOD_END = datetime(2027, 1, 2, 12, 0, tzinfo=UTC)


def noon_period_limits(workspace) -> WorkspaceLimits:
    return WorkspaceLimits(
        plan="pro",
        plan_name="Pro",
        included_tokens=20_000,
        period_start=PERIOD_START,
        period_end=PERIOD_END,
    )


def at(membership, *, tokens: tuple[int, int], when: datetime) -> UsageEvent:
    return UsageEvent.objects.create(
        workspace=membership.workspace,
        user=membership.user,
        feature="chat",
        model="gpt-4o-mini",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        total_tokens=sum(tokens),
        request_id=f"req_{when.timestamp()}",
        created_at=when,
    )


def test_no_projection_from_ten_minutes_then_an_honest_percentage():
    start, end = PERIOD_START, PERIOD_END
    ten_minutes = project(
        used=9_000,
        included=20_000,
        period_start=start,
        period_end=end,
        now=start + timedelta(minutes=10),
    )
    assert ten_minutes == (None, None)
    # 10 of 31 days gone, 9,000 used: 27,900 by the end = 140 % (not "100 %").
    projected, runs_out = project(
        used=9_000,
        included=20_000,
        period_start=start,
        period_end=end,
        now=start + timedelta(days=10),
    )
    assert projected == 27_900
    assert runs_out == (start + timedelta(days=20_000 * 10 / 9_000)).date()


@pytest.fixture
def noon_period(settings):
    from usage import limits

    settings.TOLLGATE_LIMITS_PROVIDER = "tests.experience.test_usage_numbers.noon_period_limits"
    limits._provider.cache_clear()  # the provider is cached: swap it, then put it back
    yield
    limits._provider.cache_clear()


def test_page_counts_the_period_to_the_second(noon_period, owner, workspace, api_client):
    """An upgrade at noon starts a period: the morning's tokens (old plan) are not
    in it — neither in the totals nor in the member table."""
    from config import clock

    membership = owner.memberships.get()
    at(membership, tokens=(20_000, 559), when=PERIOD_START - timedelta(hours=1))
    at(membership, tokens=(700, 164), when=PERIOD_START + timedelta(hours=1))
    with clock.travel(PERIOD_START + timedelta(hours=2)):
        page = api_client(owner).get("/usage/")
    ctx = page.context
    assert ctx["quota"].used == ctx["totals"]["total_tokens"] == 864
    by_member = {key: rows for key, _l, rows in ctx["breakdowns"]}["member"]
    assert sum(r["total_tokens"] for r in by_member) == 864
    assert ctx["quota"].projected is None  # two hours into the period: no forecast
    assert b"A forecast appears once the period is three days old" in page.content

"""Limits hold under concurrency: 200 parallel calls against a cap through the
real ASGI app on PostgreSQL — tokens used never pass the cap, no 500s."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from django.db.models import Sum
from django.test import override_settings

from tests.usage.helpers import auth, fire_parallel, run_async
from usage.metering import _admission
from usage.models import Reservation, UsageCounter, UsageEvent

pytestmark = pytest.mark.slow


def test_200_parallel_calls_never_pass_a_key_cap(metered, fake_upstream, make_member, make_key):
    fake_upstream.set_latency(20)  # keep calls overlapping
    cap = 6_000  # room for ~20 of the 200 calls
    key, secret = make_key(make_member(), token_cap=cap, cap_period="lifetime")

    responses = run_async(fire_parallel(metered, auth(secret), 200))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 402}, statuses
    assert statuses[201] >= 10
    refused = next(r for r in responses if r.status_code == 402).json()["error"]
    assert refused["code"] == "spend_cap_reached"
    assert refused["details"]["cap"] == "key" and refused["details"]["limit"] == cap
    used = UsageEvent.objects.filter(api_key=key).aggregate(t=Sum("total_tokens"))["t"]
    counter = UsageCounter.objects.get(scope="key", scope_id=key.pk)
    assert used == counter.used <= cap
    assert counter.reserved == 0 and not Reservation.objects.exists()
    assert UsageEvent.objects.filter(status="ok").count() == statuses[201]


def test_parallel_calls_stop_at_the_workspace_quota(
    metered, fake_upstream, settings, make_member, make_key
):
    settings.TOLLGATE_DEFAULT_INCLUDED_TOKENS = 2_000
    member = make_member()
    _key, secret = make_key(member)

    responses = run_async(fire_parallel(metered, auth(secret), 40))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {201, 402}, statuses
    error = next(r for r in responses if r.status_code == 402).json()["error"]
    assert error["code"] == "quota_exceeded"
    assert {"plan", "used", "limit", "period_end", "upgrade_url", "next_plan"} <= set(
        error["details"]
    )
    counter = UsageCounter.objects.get(scope="workspace", scope_id=member.workspace_id)
    assert counter.used <= 2_000 and counter.reserved == 0


def test_admission_turns_cover_the_steps_before_the_upstream_call_only(
    metered, fake_upstream, settings, make_member, make_key
):
    """One call at a time in its admission steps (rate limit, screen, reserve);
    the upstream calls themselves still all run at once, and each settles."""
    settings.TOLLGATE_METER_ADMITTING = 1
    fake_upstream.set_latency(500)
    fake_upstream.state.peak_in_flight = 0
    _key, secret = make_key(make_member())

    started = time.monotonic()
    responses = run_async(fire_parallel(metered, auth(secret), 12))
    elapsed = time.monotonic() - started

    assert [r.status_code for r in responses] == [201] * 12
    assert fake_upstream.state.peak_in_flight == 12
    assert elapsed < 12 * 0.5 / 2  # far from twelve calls one after the other
    assert UsageEvent.objects.filter(status="ok").count() == 12
    assert not Reservation.objects.exists()


def _turns(size: int) -> tuple[int, list[int]]:
    """(most calls in their admission steps at once, the order they got in)
    for 8 calls arriving together."""

    async def turns():
        inside, most, order = 0, 0, []

        async def call(n):
            nonlocal inside, most
            async with _admission():
                inside += 1
                most = max(most, inside)
                order.append(n)
                await asyncio.sleep(0.01 * (8 - n))  # the first ones take longest
                inside -= 1

        await asyncio.gather(*(call(n) for n in range(8)))
        return most, order

    with override_settings(TOLLGATE_METER_ADMITTING=size):
        return asyncio.run(turns())


def test_admission_turns_go_in_arrival_order():
    assert _turns(3) == (3, list(range(8)))
    assert _turns(0)[0] == 8  # 0: no limit

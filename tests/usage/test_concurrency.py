"""Limits hold under concurrency: 200 parallel calls against a cap through the
real ASGI app on PostgreSQL — tokens used never pass the cap, no 500s."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from django.db.models import Sum

from tests.usage.helpers import TEXT, auth, run_async, summaries_url
from usage.models import Reservation, UsageCounter, UsageEvent

pytestmark = pytest.mark.slow


async def _fire(base: str, headers: dict, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *[
                client.post(
                    summaries_url(base), json={"text": TEXT, "length": "short"}, headers=headers
                )
                for _ in range(n)
            ]
        )


def test_200_parallel_calls_never_pass_a_key_cap(metered, fake_upstream, make_member, make_key):
    fake_upstream.set_latency(20)  # keep calls overlapping
    cap = 6_000  # room for ~20 of the 200 calls
    key, secret = make_key(make_member(), token_cap=cap, cap_period="lifetime")

    responses = run_async(_fire(metered, auth(secret), 200))

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

    responses = run_async(_fire(metered, auth(secret), 40))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {201, 402}, statuses
    error = next(r for r in responses if r.status_code == 402).json()["error"]
    assert error["code"] == "quota_exceeded"
    assert {"plan", "used", "limit", "period_end", "upgrade_url", "next_plan"} <= set(
        error["details"]
    )
    counter = UsageCounter.objects.get(scope="workspace", scope_id=member.workspace_id)
    assert counter.used <= 2_000 and counter.reserved == 0

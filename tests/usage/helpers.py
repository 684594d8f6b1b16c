from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx

from config import clock
from usage.models import Reservation, UsageEvent
from usage.money import Prices
from usage.reservations import Hold

TEXT = "Summarize me: the meter reserves tokens before every upstream call."


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def summaries_url(base: str) -> str:
    return f"{base}/api/v1/summaries"


def run_async(coro):
    """asyncio.run in a fresh thread: the sync Playwright API may already run
    an event loop in the test thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def a_sent_call(*, workspace, owner, counter, request_id: str, used: int) -> dict:
    """A call sent upstream with 500 tokens reserved on `counter` (its
    Reservation row written) that used `used` tokens: the keyword arguments of
    its settle (`hold`, `event`)."""
    prices = Prices("gpt-4o-mini", Decimal("0.15"), Decimal("0.075"), Decimal("0.60"))
    Reservation.objects.create(
        request_id=request_id,
        workspace=workspace,
        tokens=500,
        counter_ids=[counter.pk],
        sent=True,
        user_id=owner.pk,
        feature="summarize",
        model="gpt-4o-mini",
        input_tokens=200,
    )
    event = UsageEvent(
        workspace_id=workspace.pk,
        user_id=owner.pk,
        feature="summarize",
        model="gpt-4o-mini",
        input_tokens=used - 40,
        output_tokens=40,
        total_tokens=used,
        reserved_tokens=500,
        input_price=prices.input_per_million,
        cached_input_price=prices.cached_input_per_million,
        output_price=prices.output_per_million,
        cost=Decimal("0.000051"),
        request_id=request_id,
        created_at=clock.now(),
    )
    return {"hold": Hold(request_id, 500, (counter.pk,), prices, None), "event": event}


async def fire_parallel(base: str, headers: dict, n: int) -> list[httpx.Response]:
    """`n` summary calls at once, each on its own connection."""
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

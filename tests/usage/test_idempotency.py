"""Idempotency-Key: a retry returns the first result, charged once; twins in
flight at the same time make one upstream call."""

from __future__ import annotations

import asyncio

import httpx

from ai_features.models import Summary
from tests.usage.helpers import TEXT, auth, run_async, summaries_url
from usage.models import UsageEvent


def test_a_retry_returns_the_first_result_charged_once(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    headers = {**auth(secret), "Idempotency-Key": "order-42"}

    first = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=headers)
    retry = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["X-Request-Id"] == first.headers["X-Request-Id"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert UsageEvent.objects.count() == 1 and Summary.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    headers = {**auth(secret), "Idempotency-Key": "k1"}
    httpx.post(summaries_url(metered), json={"text": TEXT}, headers=headers)
    other = httpx.post(summaries_url(metered), json={"text": TEXT + "!"}, headers=headers)
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "invalid_request"


def test_keys_are_per_workspace(metered, make_member, make_key):
    _a, secret_a = make_key(make_member())
    _b, secret_b = make_key(make_member())
    for secret in (secret_a, secret_b):
        r = httpx.post(
            summaries_url(metered),
            json={"text": TEXT},
            headers={**auth(secret), "Idempotency-Key": "same"},
        )
        assert r.status_code == 201
    assert UsageEvent.objects.count() == 2


def test_a_failed_first_attempt_can_be_retried(metered, fake_upstream, make_member, make_key):
    _key, secret = make_key(make_member())
    headers = {**auth(secret), "Idempotency-Key": "again"}
    fake_upstream.fail_next("500", times=3)
    assert (
        httpx.post(summaries_url(metered), json={"text": TEXT}, headers=headers).status_code == 502
    )
    retry = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=headers)
    assert retry.status_code == 201
    assert UsageEvent.objects.filter(status="ok").count() == 1


async def _twins(base: str, headers: dict) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *[
                client.post(summaries_url(base), json={"text": TEXT}, headers=headers)
                for _ in range(5)
            ]
        )


def test_concurrent_twins_make_one_upstream_call(metered, fake_upstream, make_member, make_key):
    fake_upstream.set_latency(300)
    _key, secret = make_key(make_member())

    responses = run_async(_twins(metered, {**auth(secret), "Idempotency-Key": "twin"}))

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert fake_upstream.calls.get("chat", 0) == 1
    assert UsageEvent.objects.count() == 1

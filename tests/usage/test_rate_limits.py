"""RPM/TPM limits in Redis: 429 rate_limited with Retry-After, shared by every
server process (two uvicorn processes on the same Redis)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.usage.helpers import TEXT, auth, summaries_url
from usage import ratelimit
from usage.models import UsageEvent

ROOT = Path(__file__).resolve().parents[2]


def _post(base, secret, text=TEXT):
    return httpx.post(summaries_url(base), json={"text": text}, headers=auth(secret), timeout=20)


def test_key_rpm_limit_answers_429_with_retry_after(metered, make_member, make_key):
    _key, secret = make_key(make_member(), rpm_limit=2)
    assert [_post(metered, secret).status_code for _ in range(2)] == [201, 201]

    refused = _post(metered, secret)

    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["details"]["limit"] == "key_rpm"
    assert UsageEvent.objects.count() == 2  # the refused call reached nothing


def test_key_tpm_limit_counts_tokens(metered, make_member, make_key):
    _key, secret = make_key(make_member(), tpm_limit=600)  # a medium summary reserves ~560
    assert _post(metered, secret).status_code == 201
    refused = _post(metered, secret)
    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["limit"] == "key_tpm"


def test_workspace_rpm_limit(metered, settings, make_member, make_key):
    settings.TOLLGATE_DEFAULT_RPM = 1
    member = make_member()
    _k1, first = make_key(member)
    _k2, second = make_key(member)
    assert _post(metered, first).status_code == 201
    refused = _post(metered, second)  # another key, same workspace
    assert refused.json()["error"]["details"]["limit"] == "workspace_rpm"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers(fake_upstream, rate_card, transactional_db):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_BASE_URL": fake_upstream.base_url,
        "OPENAI_API_KEY": fake_upstream.api_key,
        "TOLLGATE_METER_DB_THREADS": "2",
    }
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--log-level",
                "warning",
                "--lifespan",
                "off",
            ],
            cwd=ROOT,
            env=env,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core box imports Django slowly
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if any(proc.poll() is not None for proc in procs):
                    raise RuntimeError("a server process exited during start-up")
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.mark.slow
def test_rpm_limit_is_shared_by_two_server_processes(two_servers, make_member, make_key):
    a, b = two_servers
    _key, secret = make_key(make_member(), rpm_limit=4)

    statuses = [_post(url, secret).status_code for url in (a, b, a, b)]
    assert statuses == [201, 201, 201, 201]

    for url in (a, b):
        refused = _post(url, secret)
        assert refused.status_code == 429
        assert refused.json()["error"]["details"]["limit"] == "key_rpm"


def _tpm_count(window_key: str) -> int:
    return int(redis.Redis.from_url(settings.REDIS_URL).get(window_key) or 0)


def _workspace_tpm_limits(tokens: int):
    workspace_id = int.from_bytes(os.urandom(3), "big") + 10**7  # no real workspace
    limits = ratelimit.limits_for(
        workspace_id=workspace_id, key=None, workspace_rpm=1000, workspace_tpm=10**6, tokens=tokens
    )
    return limits, next(x for x in limits if x.name == "workspace_tpm")


def test_a_tpm_correction_rides_with_the_next_call(monkeypatch):
    """The estimate counted by one call is corrected by the next call's script
    (one Redis round trip per call), before its batch would have been sent."""
    monkeypatch.setattr(ratelimit, "ADJUST_BATCH_SECONDS", 30)  # its own send: far off
    limits, tpm = _workspace_tpm_limits(500)

    async def two_calls():
        first = await ratelimit.hit(limits)
        correcting = asyncio.ensure_future(ratelimit.adjust_tokens(limits, first.window, -400))
        await asyncio.sleep(0)  # the correction waits in this process's batch
        second = await ratelimit.hit(limits)
        counted = _tpm_count(f"{tpm.redis_key}:{first.window}")
        await asyncio.wait_for(correcting, 1)  # done with the second call's script
        return first.window, second.window, counted

    first_window, second_window, counted = asyncio.run(two_calls())
    if first_window != second_window:
        pytest.skip("the minute turned between the two calls")
    assert counted == 500 + 500 - 400


def test_a_tpm_correction_with_no_next_call_goes_on_its_own():
    limits, tpm = _workspace_tpm_limits(500)

    async def one_call():
        admitted = await ratelimit.hit(limits)
        await ratelimit.adjust_tokens(limits, admitted.window, -380)  # sent after the batch wait
        return admitted.window

    window = asyncio.run(one_call())
    assert _tpm_count(f"{tpm.redis_key}:{window}") == 120

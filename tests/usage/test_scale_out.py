"""Scale-out: three web processes on their own ports behind a real HAProxy,
sharing PostgreSQL and Redis. Limits live in PostgreSQL (quota, caps) and
Redis (RPM), never in a process, so 300 calls at once through the balancer
can't pass a key cap or a workspace quota by a single token, and a key's RPM
holds across the instances."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from ai_features.registry import get_feature
from usage.models import Reservation, UsageCounter, UsageEvent
from usage.tokens import count_message_tokens

# ~30 s on a quiet 2-core box (mostly starting three servers); the bound
# leaves room for a machine shared with other test runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NODES = 3
UPSTREAM_KEY = "scale-out-test-upstream-key"
TEXT = "Every web node shares the same limits, kept in PostgreSQL and Redis, never in memory."
BODY = {"text": TEXT, "length": "short"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, procs: list[subprocess.Popen], seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.2)


def _database_url() -> str:
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"


def _node_env(upstream_port: int, quota: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="scale-out-test-only-0123456789abcdefghijklmnopqrstuvwxyz",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=_database_url(),
        REDIS_URL=settings.REDIS_URL,
        LOG_LEVEL="WARNING",
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        TOLLGATE_DEFAULT_INCLUDED_TOKENS=str(quota),
        TOLLGATE_DEFAULT_RPM=str(10**6),
        TOLLGATE_DEFAULT_TPM=str(10**9),
        TOLLGATE_METER_JOURNAL_DIR=settings.TOLLGATE_METER_JOURNAL_DIR,
        # 3 nodes x 2 connections: the shared test PostgreSQL has other users too
        # (its max_connections is the limit a crowded CI box hits first).
        TOLLGATE_METER_DB_THREADS="2",
        PYTHONPATH=str(ROOT),
    )
    return env


UVICORN = [
    *(sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"),
    *("--no-access-log", "--log-level", "warning", "--lifespan", "off"),
]
HAPROXY_CONFIG = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend api
    bind 127.0.0.1:{port}
    default_backend web
backend web
    balance roundrobin
{servers}
"""


@contextlib.contextmanager
def _cluster(tmp_path: Path, quota: int):
    """The fake upstream, NODES uvicorn processes and HAProxy in front of them."""
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed (bin/test and .ci/run install it)")
    upstream_port, lb_port = _free_port(), _free_port()
    node_ports = [_free_port() for _ in range(NODES)]
    env = _node_env(upstream_port, quota)
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    try:
        start([sys.executable, "-m", "standins.fake_openai", "--port", str(upstream_port)], "up")
        for n, port in enumerate(node_ports):
            start([*UVICORN, "--port", str(port)], f"web{n}")
        servers = "\n".join(
            f"    server web{n} 127.0.0.1:{port}" for n, port in enumerate(node_ports)
        )
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=lb_port, servers=servers))
        start([HAPROXY, "-db", "-f", str(config)], "haproxy")
        for port in node_ports:
            _wait_http(f"http://127.0.0.1:{port}/healthz", procs)
        _wait_http(f"http://127.0.0.1:{lb_port}/healthz", procs)
        yield f"http://127.0.0.1:{lb_port}", node_ports
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


async def _fire(base: str, secrets: list[str]) -> list[int]:
    """One POST per secret, all at once (each on its own connection)."""
    limits = httpx.Limits(max_connections=len(secrets), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(secret: str) -> int:
            headers = {"Authorization": f"Bearer {secret}"}
            response = await client.post("/api/v1/summaries", json=BODY, headers=headers)
            return response.status_code

        return await asyncio.gather(*(one(s) for s in secrets))


def _counter(scope: str, scope_id: int) -> UsageCounter:
    return UsageCounter.objects.get(scope=scope, scope_id=scope_id)


def test_three_nodes_behind_haproxy_hold_caps_quota_and_rpm(
    transactional_db, rate_card, make_member, make_key, tmp_path
):
    summarize = get_feature("summarize")
    value = summarize.validate(BODY)
    messages = summarize.build_messages(value)
    estimate = count_message_tokens(messages, settings.OPENAI_DEFAULT_MODEL)
    estimate += summarize.output_limit(value)  # about what each call reserves
    quota = 80 * estimate  # the workspace's included tokens: ~80+ calls
    member = make_member()
    other = make_member(workspace=member.workspace)
    capped, capped_secret = make_key(member, token_cap=30 * estimate)  # ~30+ calls
    _open, open_secret = make_key(other)
    rpm_member = make_member()
    rpm_key, rpm_secret = make_key(rpm_member, rpm_limit=40)

    with _cluster(tmp_path, quota) as (base, _ports):
        # 300 calls at once through the balancer: 150 on the capped key, 150 on
        # another member's key of the same workspace.
        statuses = asyncio.run(_fire(base, [capped_secret, open_secret] * 150))
        # 120 calls at once on a key allowed 40 per minute (another workspace),
        # inside one minute window (a burst across its edge may see one more).
        if time.time() % 60 > 50:
            time.sleep(61 - time.time() % 60)
        rpm_statuses = asyncio.run(_fire(base, [rpm_secret] * 120))

    outcome = Counter(statuses)
    assert set(outcome) <= {201, 402}, outcome
    assert outcome[201] > 30 and outcome[402] > 0  # the limits were reached, not avoided
    workspace_id = member.workspace_id
    workspace = _counter("workspace", workspace_id)
    key = _counter("key", capped.pk)
    # 0 tokens over: what the counters hold never passes a limit ...
    assert workspace.used <= quota and key.used <= capped.token_cap
    assert workspace.reserved == 0 and key.reserved == 0 and not Reservation.objects.exists()
    # ... and it is exactly what the ledger charged.
    events = UsageEvent.objects.filter(workspace_id=workspace_id, status="ok")
    assert events.count() == outcome[201]
    assert sum(e.total_tokens for e in events) == workspace.used
    assert sum(e.total_tokens for e in events.filter(api_key=capped)) == key.used

    # RPM holds across the three instances: exactly the limit got through.
    assert Counter(rpm_statuses) == {201: 40, 429: 80}
    assert UsageEvent.objects.filter(api_key=rpm_key, status="ok").count() == 40

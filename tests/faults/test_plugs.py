"""Pulling real plugs on a private Tollgate (tests/faults/stack.py): a web
worker SIGKILLed with calls in flight, SIGTERM with calls in flight, PostgreSQL
and Redis stopped and restarted mid-traffic. Each asserts: the calls the
upstream answered are charged exactly once (the fake's served-call log against
the ledger), nothing is left held, no 500, and clients get the documented codes.
Figures go to var/test-artifacts/faults.json for the closing table."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.faults.stack import ROOT, Stack, running_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPORT = ROOT / "var" / "test-artifacts" / "faults.json"
TEXT = "The meter reserves tokens before each upstream call and settles after it. "


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("faults")) as running:
        yield running


def _report(name: str, **figures) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data[name] = figures
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True))


def _post(stack: Stack, base: str, i: int, timeout: float = 60) -> tuple:
    """(status or "failed", error code, Retry-After) of one summary call; the
    code of a 503 whose answer had arrived (its usage journaled) is
    "service_unavailable:journaled"."""
    try:
        response = httpx.post(
            f"{base}/api/v1/summaries",
            json={"text": f"Call {i}. {TEXT}"},
            headers={"Authorization": f"Bearer {stack.secret}"},
            timeout=timeout,
        )
    except httpx.HTTPError:
        return ("failed", "", None)
    code = ""
    if response.status_code >= 400:
        error = response.json().get("error", {})
        code = error.get("code", "")
        if "usage is kept" in error.get("message", ""):
            code += ":journaled"
    return (response.status_code, code, response.headers.get("Retry-After"))


def _wait_for(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - start


def _assert_exactly_once(stack: Stack) -> dict:
    # The upstream bills a call it took even when the caller died: let it finish
    # answering everything it holds before counting what it served.
    _wait_for(lambda: stack.upstream("/_control/stats")["in_flight"] == 0, 60, "upstream idle")
    ledger = stack.ledger()
    served = stack.served()
    charged = len(ledger.charged)
    figures = {
        "served": served,
        "charged": charged,
        "usage_lost": max(0, served - charged),
        "double_charges": max(0, charged - served) + ledger.duplicate_upstream_ids(),
        "left_held": ledger.reservations,
        "by_status": ledger.by_status(),
    }
    assert charged == served, figures
    assert ledger.duplicate_upstream_ids() == 0
    assert ledger.reservations == 0 and ledger.reserved == 0, "nothing left held"
    assert ledger.used == sum(e[1] for e in ledger.events), "counters agree with the ledger"
    return figures


class _Traffic:
    """Clients calling in a loop until stopped; every answer is kept."""

    def __init__(self, stack: Stack, base: str, clients: int) -> None:
        self.stack, self.base, self.results = stack, base, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(n,)) for n in range(clients)]

    def _loop(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            self.results.append((time.monotonic(), *_post(self.stack, self.base, n * 10_000 + i)))
            i += 1

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _all_upstream(stack: Stack, calls: int) -> None:
    """Every call is waiting on the upstream's answer (none between its
    reservation and its request): the moment to pull the plug."""
    _wait_for(lambda: stack.upstream("/_control/stats")["in_flight"] == calls, 90, "calls upstream")


def test_sigkill_of_a_worker_with_calls_in_flight(stack):
    stack.clear_ledger()
    stack.reset_upstream(latency_ms=8000)  # long enough for all calls to be upstream
    calls = 40
    with stack.web(workers=2) as web, ThreadPoolExecutor(calls) as pool:
        futures = [pool.submit(_post, stack, web.url, i) for i in range(calls)]
        _all_upstream(stack, calls)
        by_worker = web.connections_by_worker()
        # The worker with fewer calls (so some survive), or the only one holding any.
        killed = min(by_worker, key=by_worker.get)
        os.kill(killed, signal.SIGKILL)
        killed_at = time.monotonic()
        results = [f.result() for f in futures]
        errors = web.server_errors()
    failed = sum(1 for status, *_ in results if status == "failed")
    assert all(status in (201, "failed") for status, *_ in results), results
    recovered = stack.recover()  # the beat task, once the cutoff has passed
    recovery = time.monotonic() - killed_at
    figures = _assert_exactly_once(stack)
    assert recovered["charged"] == failed  # sent, never settled: charged, flagged
    assert figures["by_status"].get("unsettled") == failed
    assert not errors and 500 not in [s for s, *_ in results]
    assert failed == by_worker[killed]
    _report("sigkill_worker", requests=calls, failed=failed, http_500=0,
            recovery_seconds=round(recovery, 1), recovered=recovered, **figures)  # fmt: skip


def test_sigterm_drains_calls_in_flight(stack):
    stack.clear_ledger()
    stack.reset_upstream(latency_ms=5000)
    calls = 12
    with stack.web(workers=1) as web, ThreadPoolExecutor(calls) as pool:
        futures = [pool.submit(_post, stack, web.url, i) for i in range(calls)]
        _all_upstream(stack, calls)
        web.proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        results = [f.result() for f in futures]
        web.proc.wait(timeout=30)
        drained = time.monotonic() - stopped_at
        late = _post(stack, web.url, 999, timeout=3)
    assert [s for s, *_ in results] == [201] * calls, results
    assert late[0] == "failed"  # no new calls once stopping
    figures = _assert_exactly_once(stack)  # no recovery needed
    _report("sigterm_graceful", requests=calls, failed=0, http_500=0,
            drain_seconds=round(drained, 1), **figures)  # fmt: skip


def test_postgresql_stopped_and_restarted_mid_traffic(stack):
    stack.clear_ledger()
    stack.reset_upstream(latency_ms=600)
    with stack.web(workers=1) as web:
        assert _post(stack, web.url, 0)[0] == 201  # warm: key and limits cached
        with _Traffic(stack, web.url, clients=6) as traffic:
            time.sleep(1.5)
            stack.pg.stop("immediate")
            down_at = time.monotonic()
            time.sleep(0.5)
            # The full middleware path too: a DRF read and a page are 503, not 500.
            auth = {"Authorization": f"Bearer {stack.secret}"}
            quota = httpx.get(f"{web.url}/api/v1/quota", headers=auth, timeout=30)
            page = httpx.get(f"{web.url}/pricing/", timeout=30)
            time.sleep(2.5)
            stack.pg.start()
            back_at = time.monotonic()
            first_ok = _wait_for(
                lambda: any(t > back_at and s == 201 for t, s, *_ in traffic.results),
                30,
                "a call succeeding after the restart",
            )
            time.sleep(2)
        replayed = _wait_for(lambda: not list(stack.journal.glob("*.json")), 60, "journal")
        errors = web.server_errors()
    results = traffic.results
    statuses = [s for _, s, *_ in results]
    unavailable = [r for r in results if r[1] == 503]
    assert set(statuses) <= {201, 503}, statuses
    assert quota.status_code == 503 and quota.headers["Retry-After"]
    assert quota.json()["error"]["code"] == "service_unavailable"
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert unavailable, "calls during the outage are refused"
    assert all(code.startswith("service_unavailable") and retry for *_, code, retry in unavailable)
    journaled = sum(1 for *_, code, _retry in unavailable if code.endswith(":journaled"))
    assert not errors
    after = [s for t, s, *_ in results if t > back_at + first_ok + 0.5]
    assert after and set(after) == {201}
    recovered = stack.recover()
    figures = _assert_exactly_once(stack)
    _report("postgresql_restart", requests=len(results), failed=len(unavailable),
            failed_as="503 service_unavailable + Retry-After", http_500=0,
            outage_seconds=round(back_at - down_at, 1),
            recovery_seconds=round(first_ok, 1),
            journal_replayed_within_seconds=round(replayed, 1), journaled=journaled,
            recovered=recovered, **figures)  # fmt: skip


def test_redis_stopped_and_restarted_mid_traffic(stack):
    stack.clear_ledger()
    stack.reset_upstream(latency_ms=300)
    with stack.web(workers=1) as web:
        assert _post(stack, web.url, 0)[0] == 201
        with _Traffic(stack, web.url, clients=6) as traffic:
            time.sleep(1.5)
            stack.redis.stop()
            down_at = time.monotonic()
            time.sleep(2.5)
            stack.redis.start()
            back_at = time.monotonic()
            time.sleep(3)
        errors = web.server_errors()
    results = traffic.results
    statuses = [s for _, s, *_ in results]
    during = [s for t, s, *_ in results if down_at <= t <= back_at]
    assert during, "traffic flowed while Redis was down"
    assert set(statuses) == {201}, statuses  # 0 failed: PostgreSQL and a local limiter
    assert not errors
    figures = _assert_exactly_once(stack)
    _report("redis_restart", requests=len(results), failed=0, http_500=0,
            outage_seconds=round(back_at - down_at, 1), **figures)  # fmt: skip

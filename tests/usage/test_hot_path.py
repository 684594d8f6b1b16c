"""Pin the hot path's query count (a warmed API-key call of
POST /api/v1/summaries), so an N+1 or a stray lookup can't creep in."""

from __future__ import annotations

import gc
import threading
from collections import Counter

import httpx
import pytest
from django.db.backends.signals import connection_created
from psycopg.pq import TransactionStatus

from ai_features.models import Summary
from tests.usage.helpers import TEXT, auth, fire_parallel, run_async, summaries_url
from usage.models import Reservation, UsageCounter, UsageEvent, UsageRollup

EXPECTED = [
    # (no limits lookup: the workspace's limits are cached per process and checked
    # against a version read from Redis with the rate limits, see usage/limits.py)
    # reserve: one prepared statement (lock counters in id order, check, hold,
    # the reservation row marked sent)
    "WITH wanted ... locked ... FOR UPDATE ... held ... reservation ...",
    # record + settle: one prepared statement in one transaction, committing
    # in the same round trip (alone in it: in autocommit): reservation
    # released, counters reserved -> used, the usage event (with the
    # workspace's total after it, for billing's hook, which runs after the
    # commit), its moderation log and the feature's result (the Summary row),
    # rollup
    "WITH released ... moved, r0 (INSERT usage event), r1 (moderation log), r2 (summary), rollup",
]


@pytest.fixture
def pool_queries():
    """SQL run by the meter's DB threads (fresh threads so each gets the hook)."""
    from usage import dbpool

    dbpool.shutdown()
    queries: list[str] = []

    def record(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        # What the statement left: its transaction open or already committed.
        status = context["connection"].connection.info.transaction_status
        queries.append((sql, status))
        return result

    def hook(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("meter-db"):
            connection.execute_wrappers.append(record)

    connection_created.connect(hook)
    yield queries
    connection_created.disconnect(hook)
    dbpool.shutdown()


def test_a_warm_metered_call_runs_a_fixed_set_of_queries(
    metered, pool_queries, make_member, make_key
):
    _key, secret = make_key(make_member())
    post = lambda: httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret))  # noqa: E731
    assert post().status_code == 201  # warms the key, price and limit caches
    pool_queries.clear()

    assert post().status_code == 201

    statements = [q for q in pool_queries if not q[0].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == len(EXPECTED), "\n".join(q for q, _ in statements)
    (reserve, _), (settle, after_settle) = ((" ".join(q.split()), s) for q, s in statements)
    assert reserve.startswith("WITH wanted") and "FOR UPDATE" in reserve
    assert settle.startswith("WITH released AS ( DELETE FROM usage_reservation")
    assert "r0 AS (INSERT INTO usage_usageevent" in settle
    assert "r1 AS (INSERT INTO usage_moderationlog" in settle
    assert "r2 AS (INSERT INTO ai_features_summary" in settle
    assert "INSERT INTO usage_usagerollup" in settle
    # The settle statement committed with itself: the counter rows it locked
    # were free by the time its result came back.
    assert after_settle == TransactionStatus.IDLE


def test_settles_that_wait_at_once_share_one_transaction(
    metered, fake_upstream, settings, make_member, make_key
):
    """A burst's answers for one workspace: with every DB thread busy, the
    waiting settles run together (one lock of the counter rows, one commit);
    each call is still charged once, exactly."""
    from usage import dbpool

    settings.TOLLGATE_METER_DB_THREADS = 1  # a backlog at once
    dbpool.shutdown()
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(" ".join(sql.split()))
        return execute(sql, params, many, context)

    def hook(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("meter-db"):
            connection.execute_wrappers.append(record)

    connection_created.connect(hook)
    try:
        fake_upstream.set_latency(300)  # the twelve answers arrive together
        member = make_member()
        key, secret = make_key(member)
        responses = run_async(fire_parallel(metered, auth(secret), 12))
    finally:
        connection_created.disconnect(hook)
        dbpool.shutdown()

    assert [r.status_code for r in responses] == [201] * 12
    assert any(s.startswith("SELECT id FROM usage_usagecounter WHERE id = ANY") for s in seen)
    settles = [s for s in seen if s.startswith("WITH released")]
    assert len(settles) == 12  # one statement per call, fewer transactions
    events = UsageEvent.objects.filter(api_key=key)
    assert events.count() == 12 == len({e.request_id for e in events})
    used = sum(e.total_tokens for e in events)
    for counter in UsageCounter.objects.filter(workspace=member.workspace):
        assert counter.reserved == 0 and counter.used == used
    assert not Reservation.objects.exists()
    (rollup,) = UsageRollup.objects.filter(api_key_id=key.pk)
    assert rollup.requests == 12 and rollup.total_tokens == used
    assert Summary.objects.filter(workspace=member.workspace).count() == 12


# Where the objects of a metered call come from (the test's own client is httpx).
SERVER_MODULES = (
    "django.",
    "rest_framework.",
    "adrf.",
    "config.",
    "accounts.",
    "usage.",
    "ai_features.",
)


def test_a_metered_call_leaves_nothing_for_the_garbage_collector(metered, make_member, make_key):
    """Everything a warm API-key call makes is freed by reference counting as the
    call ends. Objects held in a reference cycle wait for the garbage collector
    instead: ~80 a call did (the request, view, parsers, response, the caller's
    models, the rate-limit corrections' cancelled task), and every ~130 calls a
    young collection freed ~10,000 of them in one 7-12 ms pause on the loop."""
    _key, secret = make_key(make_member())
    client = httpx.Client(headers=auth(secret))  # one connection: calls come back to back
    post = lambda: client.post(summaries_url(metered), json={"text": TEXT})  # noqa: E731
    assert post().status_code == 201  # warms the caches
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds goes to gc.garbage
    try:
        # Back to back, so that a call's rate-limit trip carries the previous
        # call's token correction (the batch is taken before its timer fires).
        assert all(post().status_code == 201 for _ in range(10))
        gc.collect()
        left = Counter(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.startswith(SERVER_MODULES)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        client.close()
    assert not left, left.most_common(10)

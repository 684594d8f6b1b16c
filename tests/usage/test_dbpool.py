"""The meter's DB thread pool (usage.dbpool._Pool): the last idle thread takes
the next job, bursts spread over at most `size` threads, jobs beyond that wait
in order, a job cancelled before it starts isn't run, errors reach the caller."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from usage.dbpool import _Pool


async def _hop(pool: _Pool, fn, together=None):
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    pool.submit((fn, loop, future, together))
    return await future


@pytest.fixture
def pool():
    pool = _Pool(3)
    yield pool
    pool.stop()


def _thread_name() -> str:
    return threading.current_thread().name


def test_a_quiet_caller_keeps_to_one_thread(pool):
    async def run():
        return [await _hop(pool, _thread_name) for _ in range(20)]

    names = asyncio.run(run())
    assert set(names) == {"meter-db_0"}


def test_after_a_burst_the_last_idle_thread_takes_the_next_job(pool):
    started = threading.Barrier(3)

    def wait_for_all():
        started.wait(timeout=5)
        return _thread_name()

    async def run():
        burst = await asyncio.gather(*(_hop(pool, wait_for_all) for _ in range(3)))
        await asyncio.sleep(0.05)  # all three idle again
        after = [await _hop(pool, _thread_name) for _ in range(10)]
        return burst, after

    burst, after = asyncio.run(run())
    assert sorted(burst) == ["meter-db_0", "meter-db_1", "meter-db_2"]
    assert len(set(after)) == 1  # not rotated over the three


def test_jobs_beyond_the_size_wait(pool):
    gate = threading.Event()
    ran: list[int] = []

    def blocked():
        gate.wait(timeout=5)

    def numbered(n):
        return lambda: ran.append(n)

    async def run():
        hold = [asyncio.ensure_future(_hop(pool, blocked)) for _ in range(3)]
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(_hop(pool, numbered(n))) for n in range(5)]
        await asyncio.sleep(0.05)
        assert ran == []  # every thread is busy
        gate.set()
        await asyncio.gather(*hold, *queued)

    asyncio.run(run())
    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert len(pool._threads) == 3


def _behind_one_busy_thread(jobs: list, *, cancel: tuple[int, ...] = (), together=None) -> list:
    """Submit `jobs` to a one-thread pool while its thread is busy; cancel the
    awaiting tasks of the `cancel` indices, then let the thread go on. With
    `together`, job n may run with the others as `together([n, ...])`.
    Returns what each job's caller got."""
    pool = _Pool(1)
    gate = threading.Event()

    async def run():
        hold = asyncio.ensure_future(_hop(pool, lambda: gate.wait(timeout=5)))
        await asyncio.sleep(0.02)
        queued = [
            asyncio.ensure_future(_hop(pool, job, (together, n) if together else None))
            for n, job in enumerate(jobs)
        ]
        await asyncio.sleep(0.02)
        for index in cancel:
            queued[index].cancel()
        gate.set()
        results = await asyncio.gather(hold, *queued, return_exceptions=True)
        await asyncio.sleep(0.05)
        return results[1:]

    results = asyncio.run(run())
    pool.stop()
    return results


def test_waiting_jobs_are_taken_in_order():
    ran: list[int] = []
    _behind_one_busy_thread([lambda n=n: ran.append(n) for n in range(5)])
    assert ran == [0, 1, 2, 3, 4]


def test_errors_reach_the_caller_and_the_thread_goes_on(pool):
    def fail():
        raise ValueError("boom")

    async def run():
        with pytest.raises(ValueError, match="boom"):
            await _hop(pool, fail)
        return await _hop(pool, _thread_name)

    assert asyncio.run(run()) == "meter-db_0"


def test_a_job_cancelled_before_it_starts_is_not_run():
    ran: list[str] = []
    jobs = [lambda: ran.append("cancelled"), lambda: ran.append("kept")]
    _behind_one_busy_thread(jobs, cancel=(0,))
    assert ran == ["kept"]


def test_stop_waits_for_the_running_job_then_refuses_more():
    pool = _Pool(2)
    done: list[bool] = []

    def slow():
        time.sleep(0.1)
        done.append(True)

    async def start():
        loop = asyncio.get_running_loop()
        pool.submit((slow, loop, loop.create_future(), None))
        await asyncio.sleep(0.02)

    asyncio.run(start())
    pool.stop()
    assert done == [True]
    with pytest.raises(RuntimeError):
        pool.submit((slow, None, None, None))


def test_waiting_jobs_of_one_together_function_run_in_one_call():
    calls: list[list[int]] = []

    def together(items):
        calls.append(items)
        return [f"together {n}" for n in items]

    alone = [lambda n=n: f"alone {n}" for n in range(5)]
    results = _behind_one_busy_thread(alone, together=together)
    assert calls == [[0, 1, 2, 3, 4]]
    assert results == [f"together {n}" for n in range(5)]


def test_when_the_together_call_fails_each_job_runs_on_its_own():
    def together(items):
        raise ValueError("one of them is bad")

    def alone(n):
        if n == 2:
            raise KeyError(n)
        return n

    results = _behind_one_busy_thread([lambda n=n: alone(n) for n in range(4)], together=together)
    assert results[:2] == [0, 1] and results[3] == 3
    assert isinstance(results[2], KeyError)  # only its own caller sees its error


def test_a_quiet_pool_runs_a_together_job_alone(pool):
    def together(items):
        raise AssertionError("not for a lone job")

    async def run():
        return [await _hop(pool, lambda n=n: n, (together, n)) for n in range(3)]

    assert asyncio.run(run()) == [0, 1, 2]

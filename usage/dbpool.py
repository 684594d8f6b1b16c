"""Database work of the async hot path runs on a small, fixed pool of threads,
each keeping one persistent connection.

Why not `sync_to_async`: under ASGI every request gets its own thread and so
its own connection, held for the whole upstream wait. A thousand requests in
flight would need a thousand PostgreSQL connections. Here the hot path needs
at most `TOLLGATE_METER_DB_THREADS` connections, however many requests wait
on the upstream."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

_lock = threading.Lock()
_thread_connections: list = []


def _on_thread_start() -> None:
    # Let shutdown() close this thread's connections from another thread.
    for conn in connections.all():
        conn.inc_thread_sharing()
        with _lock:
            _thread_connections.append(conn)


class _Pool:
    """At most `size` threads, each with its own job queue; an awaited job's
    result goes straight to its asyncio future with `call_soon_threadsafe`.

    - The most recently idle thread takes the next job (a stack, not a shared
      queue). With one shared queue, jobs rotated over every thread a burst had
      started, so a quiet process touched up to `size` connections and
      PostgreSQL backends in turn, each with cold caches: with 8 threads
      against 3, +40 % of PostgreSQL CPU and +15 % of web CPU per call at c=1
      (`bench/meter_overhead.py`, 3 interleaved rounds). Now a quiet process
      uses one thread and one backend; load spreads over as many as it needs.
    - Why not `loop.run_in_executor` on a ThreadPoolExecutor: its hop wraps a
      concurrent Future (a condition variable, an idle semaphore) and chains it
      to the asyncio one — ~100 µs of CPU per hop against ~60 here
      (`bench/db_hop.py`, uvloop, a do-nothing job), two hops per metered call —
      and its workers share one queue (above).
    - Jobs beyond `size` wait in a backlog, taken in order by threads as they
      finish."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._threads: list[threading.Thread] = []
        self._idle: list[queue.SimpleQueue] = []  # idle threads' queues, last idle on top
        self._backlog: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._stopping = False
        # As concurrent.futures does for its workers: at interpreter exit, the
        # statement a thread is running finishes (a settle commits), then it stops.
        threading._register_atexit(self.stop)

    def submit(self, job: tuple) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError("the meter's DB pool is shut down")
            if self._idle:
                inbox = self._idle.pop()
            elif len(self._threads) < self._size:
                inbox = queue.SimpleQueue()
                name = f"meter-db_{len(self._threads)}"
                thread = threading.Thread(target=self._work, args=(inbox,), name=name)
                self._threads.append(thread)
                thread.start()
            else:
                self._backlog.append(job)
                return
        inbox.put(job)

    def _work(self, inbox: queue.SimpleQueue) -> None:
        _on_thread_start()
        job = inbox.get()
        while job is not None:
            mates = self._take_mates(job)
            outcomes = _run_together([job, *mates]) if mates else [_run(job)]
            # The next job chosen, or idle again, before the callers wake and submit.
            job, idle = self._next_job(inbox)
            for outcome in outcomes:
                if outcome is not None:
                    _deliver(*outcome)
            if idle:
                job = inbox.get()

    def _take_mates(self, job: tuple) -> list[tuple]:
        """The backlog's jobs that may run in one call with `job` (the same
        `together` function), in order, up to `MAX_TOGETHER` in all."""
        together = job[3]
        if together is None or not self._backlog:
            return []
        mates: list[tuple] = []
        with self._lock:
            kept: deque[tuple] = deque()
            for other in self._backlog:
                same = other[3] is not None and other[3][0] is together[0]
                if same and len(mates) < MAX_TOGETHER - 1:
                    mates.append(other)
                else:
                    kept.append(other)
            if mates:
                self._backlog = kept
        return mates

    def _next_job(self, inbox: queue.SimpleQueue) -> tuple[tuple | None, bool]:
        """(the backlog's next job, False), or (None, True) with this thread on
        top of the idle stack, or (None, False) when the pool is stopping."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft(), False
            if self._stopping:
                return None, False
            self._idle.append(inbox)
            return None, True

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            threads, self._threads = self._threads, []
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)
        for thread in threads:
            thread.join()


def _wanted(job: tuple) -> bool:
    """False for a job cancelled before it started (not run, as an executor's)."""
    _fn, loop, future, _together = job
    return future.set_running_or_notify_cancel() if loop is None else not future.cancelled()


def _execute(job: tuple) -> tuple:
    fn, loop, future, _together = job
    try:
        return future, fn(), None, loop
    except BaseException as failure:
        return future, None, failure, loop


def _run(job: tuple) -> tuple | None:
    """(future, result, error, loop) of a job, or None if it was cancelled."""
    return _execute(job) if _wanted(job) else None


def _run_together(jobs: list[tuple]) -> list[tuple | None]:
    """Jobs of one `together` function in ONE call of it; if that call
    raises, each job runs on its own, as if it had never met the others."""
    live = [job for job in jobs if _wanted(job)]
    if len(live) < 2:
        return [_execute(job) for job in live]
    together = live[0][3][0]
    try:
        results = _call(together, ([job[3][1] for job in live],), {})
    except BaseException:
        return [_execute(job) for job in live]
    return [
        (future, result, None, loop)
        for (_fn, loop, future, _t), result in zip(live, results, strict=True)
    ]


def _deliver(
    future: asyncio.Future | Future,
    result: Any,
    error: BaseException | None,
    loop: asyncio.AbstractEventLoop | None,
) -> None:
    if loop is not None:  # an asyncio future: set on its loop's thread
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(_deliver, future, result, error, None)
    elif future.cancelled():  # (its awaiting task was cancelled meanwhile)
        return
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_pool: _Pool | None = None


def _pool_instance() -> _Pool:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _Pool(settings.TOLLGATE_METER_DB_THREADS)
    return _pool


def _call[T](fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    conn = connections["default"]
    if conn.connection is not None and conn.errors_occurred and not conn.is_usable():
        conn.close()  # e.g. the server restarted: reconnect on next use
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        # A kept connection that died with the server (a PostgreSQL restart):
        # reconnect and run once more. Safe for the meter's writes: each is one
        # transaction keyed by a unique request id, so it can't apply twice.
        if conn.in_atomic_block or (conn.connection is not None and conn.is_usable()):
            raise
        conn.close()
        return fn(*args, **kwargs)


async def run_db[T](fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a synchronous ORM function on the meter's DB threads.

    With `TOLLGATE_METER_DB_THREADS = 0` it falls back to Django's
    `sync_to_async` (e.g. tests that keep their data in an open transaction)."""
    if not settings.TOLLGATE_METER_DB_THREADS:
        return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    _pool_instance().submit((lambda: _call(fn, args, kwargs), loop, future, None))
    return await future


# Most calls one `run_db_together` job runs with.
MAX_TOGETHER = 16


async def run_db_together[T](
    together: Callable[[list[dict]], list[T]], fn: Callable[..., T], /, **kwargs: Any
) -> T:
    """As `run_db(fn, **kwargs)`; but when every DB thread is busy and other
    calls of the same `together` wait in the backlog, one thread may take them
    all: `together([kwargs, ...])` returns their results in order. If it
    raises, each call runs on its own (`fn`), so a call's outcome never
    depends on the others'. A quiet pool runs `fn` alone, without waiting."""
    if not settings.TOLLGATE_METER_DB_THREADS:
        return await sync_to_async(fn, thread_sensitive=True)(**kwargs)
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    job = (lambda: _call(fn, (), kwargs), loop, future, (together, kwargs))
    _pool_instance().submit(job)
    return await future


def run_db_sync[T](fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """From synchronous code (a request's thread under ASGI): run `fn` on the
    meter's DB threads and wait, so N concurrent requests use the pool's
    connections, not N of their own. Runs in place inside a transaction (it
    must see it), on a meter thread already, or without the pool."""
    in_place = (
        not settings.TOLLGATE_METER_DB_THREADS
        or threading.current_thread().name.startswith("meter-db")
        or connections["default"].in_atomic_block
    )
    if in_place:
        return fn(*args, **kwargs)
    future: Future = Future()
    _pool_instance().submit((lambda: _call(fn, args, kwargs), None, future, None))
    return future.result()


def shutdown() -> None:
    """Close the pool and its connections (tests, before dropping the database)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.stop()
    with _lock:
        conns = list(_thread_connections)
        _thread_connections.clear()
    for conn in conns:
        conn.close()

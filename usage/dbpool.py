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
    """At most `size` threads taking jobs from one queue; an awaited job's
    result goes straight to its asyncio future with `call_soon_threadsafe`.

    Why not `loop.run_in_executor` on a ThreadPoolExecutor: its hop wraps a
    concurrent Future (a condition variable, an idle semaphore) and chains it to
    the asyncio one. Measured on uvloop with a do-nothing job (`bench/db_hop.py`):
    ~105 µs of wall time and ~100 µs of CPU per hop against ~35 and ~46 here, and
    every metered call makes two (reserve, settle). Threads start as needed, as
    the executor's do: one at c=1, so one connection, up to `size` under load."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job, less the jobs handed to them
        self._lock = threading.Lock()
        # As concurrent.futures does for its workers: at interpreter exit, the
        # statement a thread is running finishes (a settle commits), then it stops.
        threading._register_atexit(self.stop)

    def submit(self, job: tuple) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"meter-db_{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        _on_thread_start()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, loop, future = job
            # A job cancelled before it started isn't run (as an executor's).
            if loop is None:
                wanted = future.set_running_or_notify_cancel()
            else:
                wanted = not future.cancelled()
            if wanted:
                try:
                    result, error = fn(), None
                except BaseException as failure:
                    result, error = None, failure
            # Idle again before the caller wakes and submits its next job.
            with self._lock:
                self._idle += 1
            if wanted:
                _deliver(future, result, error, loop)

    def stop(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()


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
    _pool_instance().submit((lambda: _call(fn, args, kwargs), loop, future))
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
    _pool_instance().submit((lambda: _call(fn, args, kwargs), None, future))
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

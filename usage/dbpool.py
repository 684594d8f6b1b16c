"""Database work of the async hot path runs on a small, fixed pool of threads,
each keeping one persistent connection.

Why not `sync_to_async`: under ASGI every request gets its own thread and so
its own connection, held for the whole upstream wait. A thousand requests in
flight would need a thousand PostgreSQL connections. Here the hot path needs
at most `TOLLGATE_METER_DB_THREADS` connections, however many requests wait
on the upstream."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_thread_connections: list = []


def _on_thread_start() -> None:
    # Let shutdown() close this thread's connections from another thread.
    for conn in connections.all():
        conn.inc_thread_sharing()
        with _lock:
            _thread_connections.append(conn)


def _executor_instance() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=settings.TOLLGATE_METER_DB_THREADS,
                    thread_name_prefix="meter-db",
                    initializer=_on_thread_start,
                )
    return _executor


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
    return await loop.run_in_executor(
        _executor_instance(), functools.partial(_call, fn, args, kwargs)
    )


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
    return _executor_instance().submit(_call, fn, args, kwargs).result()


def shutdown() -> None:
    """Close the pool and its connections (tests, before dropping the database)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
        conns = list(_thread_connections)
        _thread_connections.clear()
    if executor is not None:
        executor.shutdown(wait=True)
    for conn in conns:
        conn.close()

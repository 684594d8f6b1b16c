"""Redis clients for the meter: one async client per event loop (redis.asyncio
connections belong to the loop that made them) and one sync client.

Both health-check idle connections and retry a command on a fresh connection
when the old one broke (a Redis restart leaves every pooled socket dead): a
restart shorter than the retry budget costs no request an error. When Redis
stays down, `is_down()` lets callers skip it for a moment and use their
fallback at once instead of paying the retry budget on every request."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# ~1.5 s of retries (50, 100, 200, 400, 800 ms): covers a restart, bounds a wait.
RETRIES = 5
DOWN_SECONDS = 2.0  # after a failure that outlived the retries, skip Redis this long
_down_until = [0.0]


def _connection_options() -> dict:
    return {
        "health_check_interval": 5,  # PING a connection idle this long before using it
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "socket_keepalive": True,
    }


class _HiredisPacking:
    """redis.asyncio's connections pack each command in Python (~40 µs for
    the rate-limit script's two dozen arguments, every metered call); its sync
    connections use hiredis's packer (~8 µs) when hiredis is installed, as it is
    here for parsing replies. This gives the async ones the same serializer."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args):
        return self._packer.pack(*args)


@cache
def _packing_in_c(connection_class: type) -> type:
    """`connection_class` (plain, TLS or Unix socket, as the URL chose) with
    hiredis's packer."""
    if not HIREDIS_AVAILABLE:
        return connection_class
    return type(connection_class.__name__, (_HiredisPacking, connection_class), {})


def async_redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # A bounded pool that waits for a free connection (instead of failing)
        # when a burst of requests in flight all want Redis at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=100,
            timeout=20,
            retry=AsyncRetry(ExponentialBackoff(cap=0.8, base=0.05), RETRIES),
            **_connection_options(),
        )
        pool.connection_class = _packing_in_c(pool.connection_class)
        client = aioredis.Redis(connection_pool=pool)
        with _lock:
            _async_clients[loop] = client
    return client


@cache
def sync_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        retry=Retry(ExponentialBackoff(cap=0.8, base=0.05), RETRIES),
        **_connection_options(),
    )


def is_down() -> bool:
    """Redis failed recently (after its retries): use the fallback directly."""
    return _down_until[0] > time.monotonic()


def mark_down() -> None:
    _down_until[0] = time.monotonic() + DOWN_SECONDS


def mark_up() -> None:
    _down_until[0] = 0.0

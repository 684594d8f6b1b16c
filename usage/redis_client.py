"""Redis clients for the meter: one async client per event loop (redis.asyncio
connections belong to the loop that made them) and one sync client."""

from __future__ import annotations

import asyncio
import threading
import weakref
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def async_redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, max_connections=200)
        with _lock:
            _async_clients[loop] = client
    return client


@cache
def sync_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)

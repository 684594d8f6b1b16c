"""A small fixed-window counter in the shared cache (Redis), for actions that
send email on a customer's behalf: they must not turn Tollgate into a spam cannon."""

from __future__ import annotations

import time

from django.core.cache import cache


def allow(key: str, *, limit: int, period_seconds: int) -> bool:
    """Count one attempt under `key`; False once `limit` is passed in the window."""
    window = int(time.time() // period_seconds)
    cache_key = f"ratelimit:{key}:{window}"
    if cache.add(cache_key, 1, timeout=period_seconds):
        return True
    try:
        return cache.incr(cache_key) <= limit
    except ValueError:  # expired between add and incr: a fresh window
        cache.add(cache_key, 1, timeout=period_seconds)
        return True

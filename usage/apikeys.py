"""Looking up our API keys: `tg_live_<43 url-safe chars>`, stored as a sha256
hash with a visible prefix. Lookups are cached in Redis for a short time (the
hot path does no query for a known key); every change that could stop a key
working deletes its cache entry (usage.signals)."""

from __future__ import annotations

import contextlib
import pickle
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import Membership, User, Workspace
from config import clock
from config.bearer import parse_bearer  # noqa: F401 - the meter reads it from here
from config.errors import InvalidApiKey
from usage import redis_client
from usage.models import KEY_PREFIX, ApiKey, hash_secret
from usage.redis_client import async_redis, sync_redis

CACHE_PREFIX = "tg:apikey:"
VISIBLE_CHARS = 12  # "tg_live_" + 4 random chars


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 43 chars, 256 bits


def visible_prefix(secret: str) -> str:
    return secret[:VISIBLE_CHARS]


@dataclass(frozen=True)
class KeyContext:
    """Everything a request needs about a key, with no further query."""

    api_key: ApiKey
    workspace: Workspace
    user: User
    membership: Membership


def _cache_key(key_hash: str) -> str:
    return CACHE_PREFIX + key_hash


def _load(key_hash: str) -> KeyContext | None:
    key = (
        ApiKey.objects.select_related("workspace", "membership", "membership__user")
        .filter(key_hash=key_hash)
        .first()
    )
    if key is None or key.membership is None or key.membership.workspace_id != key.workspace_id:
        return None
    membership = key.membership
    return KeyContext(
        api_key=key, workspace=key.workspace, user=membership.user, membership=membership
    )


def _check(ctx: KeyContext | None) -> KeyContext:
    if ctx is None:
        raise InvalidApiKey()
    key = ctx.api_key
    if key.revoked_at is not None:
        raise InvalidApiKey("This API key was revoked.")
    if key.expires_at is not None and key.expires_at <= clock.now():
        raise InvalidApiKey("This API key has expired.")
    return ctx


def _validate_shape(secret: str) -> str:
    if not secret.startswith(KEY_PREFIX) or len(secret) < len(KEY_PREFIX) + 32:
        raise InvalidApiKey()
    return hash_secret(secret)


# The cache is only a cache: with Redis unreachable, keys are looked up in
# PostgreSQL (the source of truth) and nothing is cached.


def lookup_key(secret: str) -> KeyContext:
    """Sync lookup (DRF views). A cache miss reads PostgreSQL on the meter's DB
    threads (`run_db_sync`): under ASGI this runs on a per-request thread, and a
    burst of calls with a cold key would otherwise open a connection each."""
    from usage.dbpool import run_db_sync

    key_hash = _validate_shape(secret)
    if redis_client.is_down():
        return _check(run_db_sync(_load, key_hash))
    try:
        raw = sync_redis().get(_cache_key(key_hash))
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()
        return _check(run_db_sync(_load, key_hash))
    if raw is not None:
        return _check(pickle.loads(raw))  # noqa: S301 - our own cache entry
    ctx = run_db_sync(_load, key_hash)
    with contextlib.suppress(*redis_client.UNAVAILABLE):
        sync_redis().set(
            _cache_key(key_hash), pickle.dumps(ctx), ex=settings.TOLLGATE_KEY_CACHE_SECONDS
        )
    return _check(ctx)


async def alookup_key(secret: str) -> KeyContext:
    """Async lookup for the hot path: one Redis GET when cached."""
    from usage.dbpool import run_db

    key_hash = _validate_shape(secret)
    if redis_client.is_down():
        return _check(await run_db(_load, key_hash))
    client = async_redis()
    try:
        raw = await client.get(_cache_key(key_hash))
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()
        return _check(await run_db(_load, key_hash))
    if raw is not None:
        return _check(pickle.loads(raw))  # noqa: S301 - our own cache entry
    ctx = await run_db(_load, key_hash)
    try:
        await client.set(
            _cache_key(key_hash), pickle.dumps(ctx), ex=settings.TOLLGATE_KEY_CACHE_SECONDS
        )
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()
    return _check(ctx)


def forget_keys(key_hashes: list[str]) -> None:
    """Drop cached lookups now and again after commit (a request racing the
    change could re-cache the old row before the transaction commits)."""
    if not key_hashes:
        return
    names = [_cache_key(h) for h in key_hashes]
    sync_redis().delete(*names)
    transaction.on_commit(lambda: sync_redis().delete(*names))

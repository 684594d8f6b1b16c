"""Looking up our API keys: `tg_live_<43 url-safe chars>`, stored as a sha256
hash with a visible prefix. Lookups are cached in Redis for a short time (the
hot path does no query for a known key); every change that could stop a key
working deletes its cache entry (usage.signals).

The async hot path also keeps the cached entry in this process for a few
seconds (`LOCAL_SECONDS`), saving a Redis round trip per call. Each entry
carries a random stamp, also stored under its own small Redis key; the meter
reads that stamp back in the round trip it makes anyway (the rate-limit
script) and re-checks the key when it changed or is gone — a revocation made
through another process stops the very next call before it reaches the model
(`usage.metering._recheck_key`). A change made in this process drops the local
entry at once."""

from __future__ import annotations

import contextlib
import copy
import pickle
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Model

from accounts.models import Membership, User, Workspace
from config import clock
from config.bearer import parse_bearer  # noqa: F401 - the meter reads it from here
from config.errors import InvalidApiKey
from usage import redis_client
from usage.models import KEY_PREFIX, ApiKey, hash_secret
from usage.redis_client import async_redis, sync_redis

CACHE_PREFIX = "tg:apikey:"
STAMP_PREFIX = "tg:apikey-stamp:"
VISIBLE_CHARS = 12  # "tg_live_" + 4 random chars
# How long this process trusts its copy before reading Redis again; the stamp
# check on every metered call is what makes a change apply at once.
LOCAL_SECONDS = 10.0
LOCAL_MAX = 10_000
# key hash -> (monotonic expiry, the entry as unpickled once). Every request
# gets its own copy of the model instances (`_own_copy`), as from Redis.
_local: dict[str, tuple[float, KeyContext]] = {}


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
    # Identifies the cache entry this came from ("" when read from PostgreSQL
    # without caching): the meter checks it is still the current one.
    stamp: str = ""


def _cache_key(key_hash: str) -> str:
    return CACHE_PREFIX + key_hash


def stamp_key(key_hash: str) -> str:
    return STAMP_PREFIX + key_hash


def access_of(ctx: KeyContext) -> tuple:
    """What decides whether and how a key may call the model: equal tuples,
    same answer (see `usage.metering._recheck_key`)."""
    key, user, workspace, member = ctx.api_key, ctx.user, ctx.workspace, ctx.membership
    return (
        key.pk,
        key.revoked_at,
        key.expires_at,
        key.token_cap,
        key.cap_period,
        key.rpm_limit,
        key.tpm_limit,
        user.pk,
        user.is_suspended,
        workspace.pk,
        workspace.is_suspended,
        member.pk,
        member.role,
    )


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
    stamped, raw = _stamped(ctx)
    ttl = settings.TOLLGATE_KEY_CACHE_SECONDS
    with contextlib.suppress(*redis_client.UNAVAILABLE):
        pipe = sync_redis().pipeline(transaction=True)
        pipe.set(_cache_key(key_hash), raw, ex=ttl)
        pipe.set(stamp_key(key_hash), stamped.stamp if stamped else "", ex=ttl)
        pipe.execute()
    return _check(stamped)


async def alookup_key(secret: str) -> KeyContext:
    """Async lookup for the hot path: this process's copy when fresh, else one
    Redis GET when cached, else PostgreSQL."""
    return await alookup_hash(_validate_shape(secret))


async def alookup_hash(key_hash: str, *, local: bool = True) -> KeyContext:
    from usage.dbpool import run_db

    if redis_client.is_down():  # nothing can vouch for a local copy either
        return _check(await run_db(_load, key_hash))
    if local:
        entry = _local.get(key_hash)
        if entry is not None and entry[0] > time.monotonic():
            return _check(_own_copy(entry[1]))
    client = async_redis()
    try:
        raw = await client.get(_cache_key(key_hash))
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()
        return _check(await run_db(_load, key_hash))
    if raw is None:
        ctx = await run_db(_load, key_hash)
        raw = await _cache(client, key_hash, ctx)
        if raw is None:
            return _check(ctx)
    _keep_local(key_hash, raw)
    return _check(pickle.loads(raw))  # noqa: S301 - our own cache entry


async def _cache(client, key_hash: str, ctx: KeyContext | None) -> bytes | None:
    """Store the lookup (a miss too: unknown keys cost no query) with a fresh
    stamp. Returns the entry, or None when Redis is unavailable."""
    stamped, raw = _stamped(ctx)
    ttl = settings.TOLLGATE_KEY_CACHE_SECONDS
    try:
        async with client.pipeline(transaction=True) as pipe:
            await (
                pipe.set(_cache_key(key_hash), raw, ex=ttl)
                .set(stamp_key(key_hash), stamped.stamp if stamped else "", ex=ttl)
                .execute()
            )
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()
        return None
    return raw


def _stamped(ctx: KeyContext | None) -> tuple[KeyContext | None, bytes]:
    """The context with a fresh stamp, and its cache entry."""
    if ctx is not None:
        ctx = KeyContext(ctx.api_key, ctx.workspace, ctx.user, ctx.membership, secrets.token_hex(8))
    return ctx, pickle.dumps(ctx)


def _keep_local(key_hash: str, raw: bytes) -> None:
    if len(_local) >= LOCAL_MAX:
        _local.clear()
    _local[key_hash] = (time.monotonic() + LOCAL_SECONDS, pickle.loads(raw))  # noqa: S301


def _own_copy(ctx: KeyContext) -> KeyContext:
    """What unpickling the entry gives — new model instances, related objects
    shared as in the original (`api_key.workspace is workspace`) — for half
    the CPU (model_unpickle looks each class up in the app registry; ~2.5 % of
    a worker's CPU under load, py-spy). The instances' field values are
    immutable (ints, strings, datetimes), so copying their dicts suffices."""
    copies: dict[int, Model] = {}
    return KeyContext(
        _copy_model(ctx.api_key, copies),
        _copy_model(ctx.workspace, copies),
        _copy_model(ctx.user, copies),
        _copy_model(ctx.membership, copies),
        ctx.stamp,
    )


def _copy_model(obj: Model, copies: dict[int, Model]) -> Model:
    done = copies.get(id(obj))
    if done is not None:
        return done
    new = copies[id(obj)] = obj.__class__.__new__(obj.__class__)
    values = obj.__dict__.copy()
    state = values["_state"] = copy.copy(obj._state)
    state.fields_cache = {
        name: _copy_model(related, copies) if isinstance(related, Model) else related
        for name, related in obj._state.fields_cache.items()
    }
    new.__dict__ = values
    return new


def forget_local(key_hashes: list[str] | None = None) -> None:
    """Drop this process's copies (all of them without arguments)."""
    if key_hashes is None:
        _local.clear()
    for key_hash in key_hashes or ():
        _local.pop(key_hash, None)


def forget_keys(key_hashes: list[str]) -> None:
    """Drop cached lookups now and again after commit (a request racing the
    change could re-cache the old row before the transaction commits)."""
    if not key_hashes:
        return
    names = [name for h in key_hashes for name in (_cache_key(h), stamp_key(h))]
    forget_local(key_hashes)
    sync_redis().delete(*names)

    def after_commit() -> None:
        forget_local(key_hashes)
        sync_redis().delete(*names)

    transaction.on_commit(after_commit)

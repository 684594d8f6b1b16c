"""`Idempotency-Key` for feature endpoints: a retry of the same call returns
the first result, charged once.

The first request claims the key (a unique row per workspace + key). Its
response is stored by `Claim.store` from inside the transaction that charges
the call (pass it to the feature's `on_recorded`), so "charged" and
"remembered" can't come apart. A twin that arrives while the first is still
running waits for it and returns the same response: one upstream call. If the
first fails, the claim is dropped (nothing was charged) and a retry runs anew."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from config import clock
from config.errors import ApiError, InvalidRequest
from usage.dbpool import run_db
from usage.models import IdempotencyRecord

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict
    request_id: str
    replayed: bool = False


class Claim:
    """Handed to the producer; `store` runs inside the charging transaction."""

    def __init__(self, workspace_id: int, key: str | None, fingerprint: str) -> None:
        self.workspace_id = workspace_id
        self.key = key
        self.fingerprint = fingerprint

    def store(self, *, status: int, body: dict, request_id: str) -> None:
        if self.key is None:
            return
        IdempotencyRecord.objects.filter(workspace_id=self.workspace_id, key=self.key).update(
            done=True, response_status=status, response_body=body, request_id=request_id
        )


def fingerprint_of(*parts: object) -> str:
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()


def takeover_after() -> timedelta:
    """A claim is taken over only when its call can no longer run: past the
    meter's deadline per call, and past the stale-reservation cutoff (by then
    the recovery task has charged or freed whatever the dead call held)."""
    seconds = max(
        settings.TOLLGATE_MAX_CALL_SECONDS + 60,
        settings.TOLLGATE_STALE_RESERVATION_MINUTES * 60,
    )
    return timedelta(seconds=seconds)


def _claim(workspace_id: int, key: str, fingerprint: str) -> tuple[bool, IdempotencyRecord]:
    stale_before = clock.now() - takeover_after()
    # A claim left by a process that died mid-call is taken over.
    IdempotencyRecord.objects.filter(
        workspace_id=workspace_id, key=key, done=False, created_at__lt=stale_before
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                workspace_id=workspace_id, key=key, fingerprint=fingerprint
            )
        return True, record
    except IntegrityError:
        record = IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key).first()
        if record is None:  # released meanwhile: try again
            return _claim(workspace_id, key, fingerprint)
        return False, record


def _release(workspace_id: int, key: str) -> None:
    IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key, done=False).delete()


def idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 characters.", details={"Idempotency-Key": key[:50]}
        )
    return key


async def begin(*, request, workspace_id: int, fingerprint: str) -> Claim | Outcome:
    """Claim the request's Idempotency-Key (a Claim, with key None when there
    is none), or the stored Outcome of the first call (a replay). Whoever gets
    a Claim with a key must `release` it if the call fails without a charge."""
    key = idempotency_key(request)
    if key is None:
        return Claim(workspace_id, None, fingerprint)
    return await _claim_or_replay(workspace_id, key, fingerprint)


async def release(claim: Claim) -> None:
    if claim.key is not None:
        await run_db(_release, claim.workspace_id, claim.key)


async def run_idempotent(
    *,
    request,
    workspace_id: int,
    fingerprint: str,
    produce: Callable[[Claim], Awaitable[Outcome]],
) -> Outcome:
    begun = await begin(request=request, workspace_id=workspace_id, fingerprint=fingerprint)
    if isinstance(begun, Outcome):
        return begun
    if begun.key is None:
        return await produce(begun)
    try:
        return await produce(begun)
    except Exception:
        await release(begun)
        raise
    # On cancellation (client gone) the claim stays: the shielded call still
    # stores its response, or the claim goes stale and is taken over.


async def _claim_or_replay(workspace_id: int, key: str, fingerprint: str) -> Claim | Outcome:
    deadline = time.monotonic() + settings.TOLLGATE_IDEMPOTENCY_WAIT_SECONDS
    while True:
        claimed, record = await run_db(_claim, workspace_id, key, fingerprint)
        if claimed:
            break
        if record.fingerprint != fingerprint:
            raise InvalidRequest(
                "This Idempotency-Key was already used for a different request.",
                details={"Idempotency-Key": key},
            )
        if record.done:
            return Outcome(
                record.response_status, record.response_body, record.request_id, replayed=True
            )
        if time.monotonic() > deadline:
            raise ApiError(
                "A request with this Idempotency-Key is still in progress. Retry later.",
                code="request_in_progress",
                status=409,
            )
        await asyncio.sleep(POLL_SECONDS)
    return Claim(workspace_id, key, fingerprint)

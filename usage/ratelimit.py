"""RPM and TPM limits per key and per workspace, in Redis, shared by every
process and host. One Lua script checks every applicable limit and, only if
all fit, counts the request in all of them — atomically.

Windows are a sliding-window approximation over fixed one-minute buckets:
`previous * (1 - elapsed fraction) + current`, the classic two-bucket
estimate (no burst of 2x at a window edge, two keys per limit)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import weakref
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from redis.exceptions import NoScriptError

from config.errors import RateLimited, ServiceUnavailable
from usage import redis_client
from usage.redis_client import async_redis

WINDOW_SECONDS = 60

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local win = tonumber(ARGV[1])
local cur_start = math.floor(now / win) * win
local elapsed = (now - cur_start) / win
local base = #KEYS * 2 + 4
local fixes = base + tonumber(ARGV[base] or '0') + 1
for j = 1, tonumber(ARGV[fixes] or '0') do
  redis.call('INCRBY', ARGV[fixes + j * 2 - 1], tonumber(ARGV[fixes + j * 2]))
end
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i * 2])
  local cost = tonumber(ARGV[i * 2 + 1])
  local cur = tonumber(redis.call('GET', KEYS[i] .. ':' .. cur_start) or '0')
  local prev = tonumber(redis.call('GET', KEYS[i] .. ':' .. (cur_start - win)) or '0')
  if prev * (1 - elapsed) + cur + cost > limit then
    local wait = cur_start + win - now
    if cur + cost <= limit and prev > 0 then
      local needed = 1 - (limit - cur - cost) / prev
      wait = math.max(0, (needed - elapsed) * win)
    end
    return {i, tostring(wait)}
  end
end
for i = 1, #KEYS do
  local k = KEYS[i] .. ':' .. cur_start
  redis.call('INCRBY', k, tonumber(ARGV[i * 2 + 1]))
  redis.call('EXPIRE', k, win * 2 + 5)
end
local touched = 0
local touch = ARGV[#KEYS * 2 + 2]
if touch and touch ~= '' then
  if redis.call('SET', touch, 1, 'NX', 'EX', tonumber(ARGV[#KEYS * 2 + 3])) then touched = 1 end
end
local reads = {}
for j = 1, tonumber(ARGV[base] or '0') do
  reads[j] = redis.call('GET', ARGV[base + j]) or ''
end
return {0, tostring(cur_start), touched, unpack(reads)}
"""


@dataclass(frozen=True)
class Limit:
    name: str  # "key_rpm", "key_tpm", "workspace_rpm", "workspace_tpm"
    redis_key: str
    limit: int
    cost: int


def limits_for(
    *,
    workspace_id: int,
    key,
    workspace_rpm: int | None,
    workspace_tpm: int | None,
    tokens: int,
) -> list[Limit]:
    wanted = []
    if key is not None:
        wanted += [("key_rpm", f"k{key.pk}:r", key.rpm_limit, 1)]
        wanted += [("key_tpm", f"k{key.pk}:t", key.tpm_limit, tokens)]
    wanted += [("workspace_rpm", f"w{workspace_id}:r", workspace_rpm, 1)]
    wanted += [("workspace_tpm", f"w{workspace_id}:t", workspace_tpm, tokens)]
    return [Limit(n, f"tg:rl:{k}", lim, c) for n, k, lim, c in wanted if lim is not None]


@dataclass(frozen=True)
class Admitted:
    window: int  # the window the tokens were counted in (for `adjust_tokens`)
    touched: bool  # the `touch` marker was set now: time to write last_used_at
    values: tuple[str | None, ...] = ()  # the `read` keys' values, in order


_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis's script id


async def _run_script(client, keys: list[str], args: list):
    """EVALSHA (the script isn't sent each call); EVAL once if Redis lacks it."""
    try:
        return await client.evalsha(_SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        return await client.eval(_SCRIPT, len(keys), *keys, *args)


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode()
    return value or None


async def hit(
    limits: list[Limit],
    *,
    touch: str | None = None,
    touch_seconds: int = 60,
    read: tuple[str, ...] = (),
) -> Admitted:
    """Count one request against every limit, or raise 429 rate_limited.
    `touch` (a Redis key) is set at most once per `touch_seconds` in the same
    round trip: the caller learns whether it's time to record "last used".
    The values of the `read` keys come back in the same round trip too (the
    limits' version, the member cap), so a call needs one Redis trip here;
    without Redis they come back as None."""
    if redis_client.is_down():
        return _without_redis(limits)
    client = async_redis()
    args: list = [WINDOW_SECONDS]
    for limit in limits:
        args += [limit.limit, limit.cost]
    args += [touch or "", touch_seconds, len(read), *read]
    batch = _take_adjustments()
    fixes = [(name, delta) for name, delta in batch.deltas.items() if delta] if batch else []
    args += [len(fixes), *(part for fix in fixes for part in fix)]
    keys = [x.redis_key for x in limits]
    try:
        index, value, *rest = await _run_script(client, keys, args)
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()  # the corrections are lost: the estimates stay counted
        return _without_redis(limits)
    finally:
        if batch is not None and not batch.sent.done():
            batch.sent.set_result(None)
    if int(index) == 0:
        touched = bool(rest and int(rest[0]))
        values = tuple(_text(v) for v in rest[1:])
        return Admitted(int(value), touched, values)  # the window start, whole seconds
    refused = limits[int(index) - 1]
    retry_after = max(
        1, math.ceil(Decimal(value.decode() if isinstance(value, bytes) else value))
    )  # seconds until the window frees up
    raise _refusal(refused, retry_after)


def _refusal(refused: Limit, retry_after: int) -> RateLimited:
    unit = "requests" if refused.name.endswith("rpm") else "tokens"
    return RateLimited(
        f"Rate limit reached: {refused.limit} {unit} per minute "
        f"({refused.name.replace('_', ' ')}). Retry after {retry_after} s.",
        details={"limit": refused.name, "value": refused.limit, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


async def adjust_tokens(limits: list[Limit], window: int | None, delta: int) -> None:
    """Replace the token estimate counted by `hit` with the actual tokens.
    Corrections arriving within `ADJUST_BATCH_SECONDS` go to Redis together:
    with this process's next `hit` (its script applies them before it checks
    anything), or, if no call comes by then, in one pipeline of their own. A
    busy process thus makes one Redis round trip per call, not two; until then
    the estimate stays counted, which errs on the safe side."""
    token_limits = [x for x in limits if x.name.endswith("tpm")]
    if not window or delta == 0 or not token_limits:
        return
    if window < 0:  # counted by the local limiter (Redis was down)
        _local.adjust(token_limits, -window, delta)
        return
    if redis_client.is_down():
        return
    loop = asyncio.get_running_loop()
    batch = _adjusting.get(loop)
    if batch is None:
        batch = _adjusting[loop] = _Adjustments(loop.create_future())
        batch.timer = loop.call_later(ADJUST_BATCH_SECONDS, _send_untaken, loop, batch)
    for limit in token_limits:
        name = f"{limit.redis_key}:{window}"
        batch.deltas[name] = batch.deltas.get(name, 0) + delta
    await asyncio.shield(batch.sent)


ADJUST_BATCH_SECONDS = 0.02


@dataclass
class _Adjustments:
    sent: asyncio.Future
    deltas: dict[str, int] = field(default_factory=dict)
    # When the batch's time is up, unless a `hit` took it first. A timer, not a
    # sleeping task to cancel: a cancelled task leaves a reference cycle
    # (its CancelledError's traceback holds the frame that holds the batch
    # that holds the task) for the garbage collector, one per metered call.
    timer: asyncio.TimerHandle | None = None
    sender: asyncio.Task | None = None  # held so the task isn't collected mid-flight
    taken: bool = False  # a `hit` carries them: the sender has nothing to send


def _take_adjustments() -> _Adjustments | None:
    """The corrections waiting in this loop's batch, for `hit` to carry; the
    batch closes to newcomers and its sender stands down."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    batch = _adjusting.pop(loop, None)
    if batch is None:
        return None
    batch.taken = True
    if batch.timer is not None:
        batch.timer.cancel()
    return batch


_adjusting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Adjustments] = (
    weakref.WeakKeyDictionary()
)


def _send_untaken(loop: asyncio.AbstractEventLoop, batch: _Adjustments) -> None:
    """The batch's time is up and no `hit` took it: send it in a pipeline of its own."""
    # Closed to newcomers first: a later correction starts the next batch
    # instead of joining one on its way.
    if _adjusting.get(loop) is batch:
        del _adjusting[loop]
    if not batch.taken:
        batch.sender = loop.create_task(_send_adjustments(batch))


async def _send_adjustments(batch: _Adjustments) -> None:
    try:
        async with async_redis().pipeline(transaction=False) as pipe:
            for name, delta in batch.deltas.items():
                if delta:
                    pipe.incrby(name, delta)
            await pipe.execute()
    except redis_client.UNAVAILABLE:
        redis_client.mark_down()  # the estimates stay counted: errs on the safe side
    finally:  # (also when cancelled at shutdown: the callers stop waiting)
        if not batch.sent.done():
            batch.sent.set_result(None)


# --- Redis down: the documented policy (TOLLGATE_RATELIMIT_WITHOUT_REDIS) -------------


class _LocalWindows:
    """The same two-bucket sliding window as the Lua script, in this process
    only. Each process enforces the full limit, so N processes admit up to N
    times it while Redis is down: calls flow, bursts stay bounded."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def hit(self, limits: list[Limit]) -> tuple[int, Limit | None, int]:
        now = time.time()
        start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        elapsed = (now - start) / WINDOW_SECONDS
        if len(self.counts) > 50_000:
            self.counts = {k: v for k, v in self.counts.items() if k.endswith(f":{start}")}
        for limit in limits:
            current = self.counts.get(f"{limit.redis_key}:{start}", 0)
            previous = self.counts.get(f"{limit.redis_key}:{start - WINDOW_SECONDS}", 0)
            if previous * (1 - elapsed) + current + limit.cost > limit.limit:
                return start, limit, max(1, math.ceil(start + WINDOW_SECONDS - now))
        for limit in limits:
            name = f"{limit.redis_key}:{start}"
            self.counts[name] = self.counts.get(name, 0) + limit.cost
        return start, None, 0

    def adjust(self, limits: list[Limit], window: int, delta: int) -> None:
        for limit in limits:
            name = f"{limit.redis_key}:{window}"
            if name in self.counts:
                self.counts[name] += delta


_local = _LocalWindows()


def _without_redis(limits: list[Limit]) -> Admitted:
    policy = str(settings.TOLLGATE_RATELIMIT_WITHOUT_REDIS).strip().lower()
    if policy == "closed":
        raise ServiceUnavailable("Rate limiting is unavailable right now. Retry in a moment.")
    if policy == "open":
        return Admitted(0, False)  # 0: nothing counted, nothing to adjust
    start, refused, retry_after = _local.hit(limits)
    if refused is not None:
        raise _refusal(refused, retry_after)
    # A negative window tells adjust_tokens the tokens were counted locally.
    return Admitted(-start, False)

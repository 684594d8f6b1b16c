"""The ONE path to the upstream model (DESIGN.md "The request path").

    caller (authenticated by the API view) → rate limit (Redis) → estimate →
    reserve (PostgreSQL, one transaction) → moderation → upstream → record the
    event and settle

`complete` and `stream` run the whole call in their own asyncio task: when the
HTTP client goes away, the call still finishes, is recorded and settles.
Failures release the reservation; a call that consumed no tokens costs
nothing; a call whose usage never arrived is charged its reservation and
flagged for review."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from accounts.models import Membership, User, Workspace
from config import clock
from config.errors import (
    ApiError,
    ContentFlagged,
    UpstreamError,
)
from usage import moderation, ratelimit
from usage.dbpool import run_db
from usage.limits import WorkspaceLimits, get_workspace_limits
from usage.models import ApiKey, EventStatus, ModerationLog, UsageEvent
from usage.money import cost_of
from usage.reservations import Hold, reserve, settle
from usage.tokens import count_message_tokens
from usage.upstream import TokenUsage, get_upstream

logger = logging.getLogger(__name__)

# Calls that outlive their HTTP request are kept alive here until they settle.
_in_flight: set[asyncio.Task] = set()


@dataclass(frozen=True)
class Caller:
    workspace: Workspace
    user: User
    membership: Membership
    api_key: ApiKey | None = None


@dataclass(frozen=True)
class Completion:
    request_id: str
    text: str
    model: str
    usage: TokenUsage
    event_id: int
    finish_reason: str | None
    # What the feature's `on_recorded` stored in the charging transaction.
    record: Any = field(default=None, compare=False)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


# --- the call -----------------------------------------------------------------------

_limits_cache: dict[int, tuple[float, WorkspaceLimits]] = {}


async def _rate_limits(workspace: Workspace) -> WorkspaceLimits:
    """Workspace limits for the Redis check, cached briefly (the reservation
    re-reads them fresh, so quotas never depend on this cache)."""
    cached = _limits_cache.get(workspace.pk)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    limits = await run_db(get_workspace_limits, workspace)
    _remember_limits(workspace.pk, limits)
    return limits


def _remember_limits(workspace_id: int, limits: WorkspaceLimits) -> None:
    _limits_cache[workspace_id] = (
        time.monotonic() + settings.TOLLGATE_LIMITS_CACHE_SECONDS,
        limits,
    )


@dataclass
class _Call:
    caller: Caller
    feature: str
    messages: list[dict]
    max_output_tokens: int
    model: str
    response_format: dict | None
    request_id: str
    moderation_text: str
    on_recorded: Callable[[UsageEvent, str], Any] | None
    streamed: bool = False
    input_estimate: int = 0
    hold: Hold | None = None
    rate_limits: list = field(default_factory=list)
    window: int | None = None
    touch_key: bool = False
    screen_log: ModerationLog | None = None
    started: float = 0.0

    @property
    def estimate(self) -> int:
        return self.input_estimate + self.max_output_tokens


def _prepare(
    *,
    caller: Caller,
    feature: str,
    messages: list[dict],
    max_output_tokens: int,
    model: str | None,
    response_format: dict | None,
    request_id: str | None,
    moderation_text: str | None,
    on_recorded: Callable[[UsageEvent, str], Any] | None,
    streamed: bool,
) -> _Call:
    model = model or settings.OPENAI_DEFAULT_MODEL
    text = moderation_text
    if text is None:
        text = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    call = _Call(
        caller=caller,
        feature=feature,
        messages=messages,
        max_output_tokens=max_output_tokens,
        model=model,
        response_format=response_format,
        request_id=request_id or new_request_id(),
        moderation_text=text,
        on_recorded=on_recorded,
        streamed=streamed,
    )
    call.input_estimate = count_message_tokens(messages, model)
    return call


async def _admit(call: _Call) -> None:
    """Rate limit, reserve, pre-screen. Raises (with nothing held) on refusal."""
    caller = call.caller
    limits = await _rate_limits(caller.workspace)
    call.rate_limits = ratelimit.limits_for(
        workspace_id=caller.workspace.pk,
        key=caller.api_key,
        workspace_rpm=limits.rpm_limit,
        workspace_tpm=limits.tpm_limit,
        tokens=call.estimate,
    )
    key = caller.api_key
    admitted = await ratelimit.hit(
        call.rate_limits,
        touch=f"tg:apikey-touched:{key.pk}" if key is not None else None,
        touch_seconds=settings.TOLLGATE_KEY_TOUCH_SECONDS,
    )
    call.window, call.touch_key = admitted.window, admitted.touched
    call.hold = await run_db(
        reserve,
        caller=caller,
        feature=call.feature,
        model=call.model,
        tokens=call.estimate,
        request_id=call.request_id,
    )
    _remember_limits(caller.workspace.pk, call.hold.limits)
    call.started = time.monotonic()
    try:
        await _screen(call)
    except ContentFlagged:
        raise
    except BaseException as error:
        await _record_failure(call, error)
        raise


async def _screen(call: _Call) -> None:
    screen = moderation.cached_settings()
    if screen is None:
        screen = await run_db(moderation.current_settings)
    if not screen.enabled:
        return
    result = await get_upstream().moderate(text=call.moderation_text)
    call.screen_log = moderation.log_entry(
        caller=call.caller, request_id=call.request_id, text=call.moderation_text, result=result
    )
    if not result.flagged:
        return
    user_id = call.caller.user.pk
    await run_db(
        settle,
        hold=call.hold,
        event=_event(call, status=EventStatus.REFUSED, error_code=ContentFlagged.code),
        moderation=call.screen_log,
        on_recorded=lambda _e: moderation.suspend_if_repeatedly_flagged(user_id=user_id),
    )
    raise ContentFlagged(
        details={"categories": call.screen_log.categories, "request_id": call.request_id}
    )


def _event(
    call: _Call,
    *,
    status: str,
    usage: TokenUsage | None = None,
    upstream_request_id: str = "",
    error_code: str = "",
    flag_reason: str = "",
) -> UsageEvent:
    usage = usage or TokenUsage(0, 0, 0)
    hold = call.hold
    assert hold is not None, "events are written only for calls that reserved"
    prices = hold.prices
    caller = call.caller
    latency = int((time.monotonic() - call.started) * 1000) if call.started else 0
    return UsageEvent(
        workspace_id=caller.workspace.pk,
        user_id=caller.user.pk,
        api_key_id=caller.api_key.pk if caller.api_key else None,
        feature=call.feature,
        model=call.model,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        reserved_tokens=hold.tokens,
        input_price=prices.input_per_million,
        cached_input_price=prices.cached_input_per_million,
        output_price=prices.output_per_million,
        cost=cost_of(
            prices=prices,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
        ),
        latency_ms=max(latency, 0),
        request_id=call.request_id,
        upstream_request_id=(upstream_request_id or "")[:200],
        status=status,
        error_code=error_code,
        flagged=bool(flag_reason),
        flag_reason=flag_reason,
        streamed=call.streamed,
        created_at=clock.now(),
    )


def _reservation_as_usage(call: _Call) -> TokenUsage:
    """What we charge when the upstream never reported usage: the reservation."""
    return TokenUsage(call.input_estimate, 0, call.max_output_tokens)


async def _record_failure(call: _Call, error: BaseException, *, consumed: bool = False) -> None:
    """Settle a failed call: free if nothing was consumed, else the reservation."""
    code = error.code if isinstance(error, ApiError) else "internal_error"
    if consumed:
        event = _event(
            call,
            status=EventStatus.INCOMPLETE,
            usage=_reservation_as_usage(call),
            error_code=code,
            flag_reason="The upstream failed mid-answer after consuming tokens; "
            "the reservation was charged.",
        )
    else:
        event = _event(call, status=EventStatus.ERROR, error_code=code)
    try:
        await run_db(settle, hold=call.hold, event=event, moderation=call.screen_log)
    except Exception:
        logger.exception("could not settle failed call %s", call.request_id)
    if not isinstance(error, ApiError):
        logger.error("metered call %s failed: %r", call.request_id, error)


async def _record_success(
    call: _Call, *, text: str, usage: TokenUsage | None, upstream_request_id: str, finish_reason
) -> Completion:
    flag = ""
    status = EventStatus.OK
    if usage is None:
        usage = _reservation_as_usage(call)
        status = EventStatus.INCOMPLETE
        flag = "The upstream reported no usage; the reservation was charged."
    caller = call.caller
    touch = caller.api_key.pk if caller.api_key and call.touch_key else None
    event = _event(
        call,
        status=status,
        usage=usage,
        upstream_request_id=upstream_request_id,
        flag_reason=flag,
    )
    feature_hook = call.on_recorded
    record = await run_db(
        settle,
        hold=call.hold,
        event=event,
        moderation=call.screen_log,
        on_recorded=(lambda e: feature_hook(e, text)) if feature_hook else None,
        touch_key_id=touch,
    )
    # Bookkeeping the answer needn't wait for.
    _keep_alive(
        ratelimit.adjust_tokens(call.rate_limits, call.window, usage.total_tokens - call.estimate)
    )
    return Completion(
        request_id=call.request_id,
        text=text,
        model=call.model,
        usage=usage,
        event_id=event.pk,
        finish_reason=finish_reason,
        record=record,
    )


async def _run_complete(call: _Call) -> Completion:
    await _admit(call)
    try:
        result = await get_upstream().chat(
            model=call.model,
            messages=call.messages,
            max_output_tokens=call.max_output_tokens,
            safety_identifier=call.caller.user.safety_identifier,
            response_format=call.response_format,
        )
    except BaseException as error:
        await _record_failure(call, error)
        raise
    return await _record_success(
        call,
        text=result.text,
        usage=result.usage,
        upstream_request_id=result.upstream_request_id or "",
        finish_reason=result.finish_reason,
    )


def _keep_alive(coro) -> asyncio.Task:
    task = asyncio.ensure_future(coro)
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)
    return task


async def complete(
    *,
    caller: Caller,
    feature: str,
    messages: list[dict],
    max_output_tokens: int,
    model: str | None = None,
    response_format: dict | None = None,
    request_id: str | None = None,
    moderation_text: str | None = None,
    on_recorded: Callable[[UsageEvent, str], Any] | None = None,
) -> Completion:
    """One metered, non-streamed call. `on_recorded(event, text)` runs inside
    the transaction that charges it (store the feature's result there)."""
    call = _prepare(
        caller=caller,
        feature=feature,
        messages=messages,
        max_output_tokens=max_output_tokens,
        model=model,
        response_format=response_format,
        request_id=request_id,
        moderation_text=moderation_text,
        on_recorded=on_recorded,
        streamed=False,
    )
    # Shielded: if the client disconnects, the call still completes and settles.
    return await asyncio.shield(_keep_alive(_run_complete(call)))


_END = object()


async def _pump(call: _Call, queue: asyncio.Queue) -> None:
    """Runs the streamed call to its end whatever the consumer does."""
    try:
        await _admit(call)
    except BaseException as error:
        queue.put_nowait(error)
        return
    parts: list[str] = []
    usage = None
    upstream_id = ""
    finish = None
    try:
        async for chunk in get_upstream().chat_stream(
            model=call.model,
            messages=call.messages,
            max_output_tokens=call.max_output_tokens,
            safety_identifier=call.caller.user.safety_identifier,
        ):
            upstream_id = chunk.upstream_request_id or upstream_id
            finish = chunk.finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.delta:
                parts.append(chunk.delta)
                queue.put_nowait(chunk.delta)
    except BaseException as error:
        # Tokens were consumed if anything came back: charge the reservation.
        await _record_failure(call, error, consumed=bool(parts or usage))
        if isinstance(error, ApiError):
            error.details.setdefault("request_id", call.request_id)
        queue.put_nowait(error if isinstance(error, Exception) else UpstreamError())
        return
    try:
        completion = await _record_success(
            call,
            text="".join(parts),
            usage=usage,
            upstream_request_id=upstream_id,
            finish_reason=finish,
        )
    except BaseException as error:
        queue.put_nowait(error)
        return
    queue.put_nowait(completion)
    queue.put_nowait(_END)


async def stream(
    *,
    caller: Caller,
    feature: str,
    messages: list[dict],
    max_output_tokens: int,
    model: str | None = None,
    response_format: dict | None = None,
    request_id: str | None = None,
    moderation_text: str | None = None,
    on_recorded: Callable[[UsageEvent, str], Any] | None = None,
) -> AsyncIterator[str | Completion]:
    """Yields text deltas, then one final Completion. Refusals (quota, rate
    limit, moderation) raise at the first iteration, before any text. If the
    consumer stops early, the upstream is still read to the end and recorded."""
    call = _prepare(
        caller=caller,
        feature=feature,
        messages=messages,
        max_output_tokens=max_output_tokens,
        model=model,
        response_format=response_format,
        request_id=request_id,
        moderation_text=moderation_text,
        on_recorded=on_recorded,
        streamed=True,
    )
    queue: asyncio.Queue = asyncio.Queue()
    _keep_alive(_pump(call, queue))
    while True:
        item = await queue.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


async def drain_in_flight(timeout: float = 10.0) -> None:
    """Wait for calls still settling in the background (tests, shutdown)."""
    pending = [t for t in _in_flight if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)

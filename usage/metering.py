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
import contextlib
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import Membership, User, Workspace
from accounts.permissions import ensure_member_access
from accounts.roles import Perm
from config import clock, textguard
from config.errors import (
    ApiError,
    ContentFlagged,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    dependency_down,
    to_api_error,
)
from config.textguard import scrub
from usage import apikeys, journal, moderation, ratelimit, redis_client
from usage.dbpool import run_db, run_db_together
from usage.limits import (
    WorkspaceLimits,
    cached_limits,
    get_workspace_limits,
    remember_limits,
    version_keys,
)
from usage.models import ApiKey, EventStatus, ModerationLog, UsageEvent
from usage.money import cost_of
from usage.redis_client import async_redis
from usage.reservations import (
    Hold,
    ensure_feature_allowed,
    member_cap_key,
    no_hold,
    reserve,
    settle,
    settle_together,
)
from usage.tokens import count_message_tokens, count_response_format_tokens, count_tokens
from usage.upstream import TokenUsage, get_upstream

logger = logging.getLogger(__name__)

# Calls that outlive their HTTP request are kept alive here until they settle.
_in_flight: set[asyncio.Task] = set()
# False once the process is shutting down: new calls get 503, calls in flight finish.
_accepting = True
# Per event loop: (size, the gate of the calls in their admission steps).
_admission_gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


async def _limits_for_rate_check(workspace: Workspace) -> WorkspaceLimits:
    """The workspace's limits as this process last read them (their RPM/TPM feed
    the rate-limit script); on a cold cache, read with their version first."""
    limits = cached_limits(workspace.pk)
    if limits is None:
        version = await _read_version(workspace.pk)
        limits = await run_db(get_workspace_limits, workspace)
        remember_limits(workspace.pk, version, limits)
    return limits


async def _current_limits(workspace: Workspace, version: tuple) -> WorkspaceLimits:
    """The limits to reserve under: the cached ones only if read under the
    version Redis holds now (an upgrade applies on the very next call)."""
    limits = cached_limits(workspace.pk, version)
    if limits is None:
        limits = await run_db(get_workspace_limits, workspace)
        remember_limits(workspace.pk, version, limits)
    return limits


def _UNVOUCHED() -> tuple:
    return (object(),)  # equal to no other version


async def _read_version(workspace_id: int) -> tuple:
    """The limits' version now; a version matching nothing when Redis is away
    (then every call re-reads its limits: nothing can vouch for a cached entry)."""
    if not redis_client.is_down():
        try:
            return tuple(_text(v) for v in await async_redis().mget(version_keys(workspace_id)))
        except redis_client.UNAVAILABLE:
            redis_client.mark_down()
    return _UNVOUCHED()


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode()
    return value or None


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
    # Stop (see `_stop`): the consumer closed a stream before its end.
    stop_requested: bool = False
    upstream_open: bool = False

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
    # The backstop of config.inputguard: whatever a feature built from stored
    # or uploaded text, nothing unstorable is sent (or reserved for).
    textguard.check(messages, "messages")
    if response_format:
        textguard.check(response_format, "response_format")
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
    # The reservation covers what will be billed: the schema of a structured
    # answer is prompt tokens too (usage.tokens.count_response_format_tokens).
    call.input_estimate = count_message_tokens(messages, model) + count_response_format_tokens(
        response_format, model
    )
    return call


def _admission() -> contextlib.AbstractAsyncContextManager:
    """The turn of a call to run its admission steps (`_admit`), at most
    `TOLLGATE_METER_ADMITTING` at once per process, in arrival order.

    Why: the event loop runs ready steps first come, first served. A burst of
    500 calls would otherwise advance in lockstep: every call's rate-limit
    trip, then every call's reservation, and only then the upstream calls,
    nearly all at the end. Their answers would come back bunched and queue
    for the settle. Admitted a few dozen at a time, the first calls reach the
    upstream at once and the answers come back spread out, to be settled as
    they arrive. The answers and settles themselves never wait for a turn."""
    size = settings.TOLLGATE_METER_ADMITTING
    if not size:
        return contextlib.nullcontext()
    loop = asyncio.get_running_loop()
    kept = _admission_gates.get(loop)
    if kept is None or kept[0] != size:
        kept = _admission_gates[loop] = (size, asyncio.Semaphore(size))
    return kept[1]


async def _admit(call: _Call) -> None:
    """Rate limit, pre-screen, reserve. Raises (with nothing held) on refusal.

    The screen comes BEFORE the reservation so that the reservation statement
    is the last thing before the upstream call: the row it writes says "sent"
    without a round trip of its own (see `usage.reservations.reserve`)."""
    if not _accepting:
        raise ServiceUnavailable("This server is restarting. Retry in a moment.")
    caller = call.caller
    workspace_id = caller.workspace.pk
    limits = await _limits_for_rate_check(caller.workspace)
    # Refusals that need no model come before the screen (reserve re-checks fresh).
    ensure_feature_allowed(call.feature, limits)
    limits.ensure_access()  # unpaid / upstream backstop: refused before any upstream call
    call.rate_limits = ratelimit.limits_for(
        workspace_id=caller.workspace.pk,
        key=caller.api_key,
        workspace_rpm=limits.rpm_limit,
        workspace_tpm=limits.tpm_limit,
        tokens=call.estimate,
    )
    key = caller.api_key
    stamp = key.cache_stamp if key is not None else ""
    stamp_read = (apikeys.stamp_key(key.key_hash),) if key is not None and stamp else ()
    admitted = await ratelimit.hit(
        call.rate_limits,
        touch=f"tg:apikey-touched:{key.pk}" if key is not None else None,
        touch_seconds=settings.TOLLGATE_KEY_TOUCH_SECONDS,
        # Same round trip: the limits' version, the member's cap and the stamp
        # of the key's cache entry the caller was authenticated from.
        read=(
            *version_keys(workspace_id),
            member_cap_key(caller.membership.pk),
            *stamp_read,
        ),
    )
    call.window, call.touch_key = admitted.window, admitted.touched
    version: tuple = _UNVOUCHED()
    member_cap_raw = current_stamp = None
    if admitted.values:  # (without Redis, the local limiter read nothing)
        version, member_cap_raw = admitted.values[:2], admitted.values[2]
        current_stamp = admitted.values[3] if stamp_read else None
    if stamp and current_stamp != stamp:
        await _recheck_key(call)
        caller = call.caller
    limits = await _current_limits(caller.workspace, version)
    # Under the limits' current version (a downgrade applies before the screen).
    ensure_feature_allowed(call.feature, limits)
    call.started = time.monotonic()
    await _screen(call)
    call.hold = await run_db(
        reserve,
        caller=caller,
        feature=call.feature,
        model=call.model,
        tokens=call.estimate,
        request_id=call.request_id,
        input_tokens=call.input_estimate,
        sent=True,
        limits=limits,
        member_cap_raw=member_cap_raw,
    )


async def _recheck_key(call: _Call) -> None:
    """The key's cache entry changed since the caller was authenticated from it
    (a copy this process kept): a revocation, suspension or role change made
    through another process, or simply a new entry after the old one expired.
    Look the key up afresh; refuse as authentication would have, or go on with
    its current caps. Nothing was reserved yet."""
    caller = call.caller
    key = caller.api_key
    assert key is not None
    fresh = await apikeys.alookup_hash(key.key_hash, local=False)  # 401 if revoked
    if apikeys.access_of(fresh) == apikeys.access_of(
        apikeys.KeyContext(key, caller.workspace, caller.user, caller.membership)
    ):
        return
    # The refusals of authentication (accounts.permissions.IsWorkspaceMember);
    # no metered path is one a suspended workspace's owner may still use.
    ensure_member_access(
        user=fresh.user,
        workspace=fresh.workspace,
        membership=fresh.membership,
        required=Perm.USE_FEATURES,
    )
    fresh.api_key.cache_stamp = fresh.stamp
    call.caller = Caller(fresh.workspace, fresh.user, fresh.membership, fresh.api_key)


async def _screen(call: _Call) -> None:
    screen = moderation.cached_settings()
    if screen is None:
        screen = await run_db(moderation.current_settings)
    if not moderation.screening_enabled(screen):
        return
    result = await moderation.screen(call.moderation_text)
    call.screen_log = moderation.log_entry(
        caller=call.caller, request_id=call.request_id, text=call.moderation_text, result=result
    )
    if not result.flagged:
        return
    user_id = call.caller.user.pk

    def refuse() -> None:
        # Nothing is held yet: the refusal is an event of 0 tokens, no reservation.
        call.hold = no_hold(request_id=call.request_id, model=call.model)
        # The count of flags must include this one: suspend after it is written,
        # in the same transaction (settle's hook runs before its rows exist).
        with transaction.atomic():
            settle(
                hold=call.hold,
                event=_event(call, status=EventStatus.REFUSED, error_code=ContentFlagged.code),
                moderation=call.screen_log,
            )
            moderation.suspend_if_repeatedly_flagged(user_id=user_id)

    await run_db(refuse)
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


async def _settle(
    call: _Call,
    event: UsageEvent,
    *,
    on_recorded: Callable[[UsageEvent], Any] | None = None,
    touch_key_id: int | None = None,
) -> Any:
    """`settle` on the meter's DB threads; if PostgreSQL can't be reached, the
    settle goes to the durable journal (replayed exactly once, by request id)
    and the caller gets 503 service_unavailable — the usage is not lost."""
    item = {"hold": call.hold, "event": event, "moderation": call.screen_log}
    try:
        if touch_key_id is not None:
            return await run_db(settle, **item, on_recorded=on_recorded, touch_key_id=touch_key_id)
        # Settles waiting at once (a burst's answers) may share one transaction.
        return await run_db_together(settle_together, settle, **item, on_recorded=on_recorded)
    except IntegrityError:
        # Recorded already: by the recovery task (a call that outlived the stale
        # cutoff) or by a retried commit whose first answer was lost. Never twice.
        if not await run_db(UsageEvent.objects.filter(request_id=call.request_id).exists):
            raise
        logger.warning("settle of %s found it recorded already", call.request_id)
        raise ServiceUnavailable(
            "The answer arrived after its call had been recorded; retry to run it again.",
            details={"request_id": call.request_id},
        ) from None
    except Exception as error:
        if not dependency_down(error):
            raise
        assert call.hold is not None  # a call being recorded has reserved
        entry = journal.entry_for(
            hold=call.hold, event=event, moderation=call.screen_log, touch_key_id=touch_key_id
        )
        await asyncio.get_running_loop().run_in_executor(None, journal.write, entry)
        _replay_journal_soon()
        logger.warning("settle of %s journaled: the database is unavailable", call.request_id)
        raise ServiceUnavailable(
            "The answer arrived but could not be stored right now; its usage is kept "
            "and will be recorded. Retry in a moment.",
            details={"request_id": call.request_id},
        ) from None


_replaying: list[asyncio.Task] = []


def _replay_journal_soon() -> None:
    """One loop per process: replay the journal until PostgreSQL takes it."""
    if _replaying and not _replaying[0].done():
        return
    _replaying[:] = [_keep_alive(_replay_until_empty())]


async def _replay_until_empty(pause: float = 1.0, give_up_after: float = 3600.0) -> None:
    deadline = time.monotonic() + give_up_after
    while time.monotonic() < deadline:
        await asyncio.sleep(pause)
        try:
            await run_db(journal.replay)
        except Exception:
            logger.warning("meter journal replay failed; retrying", exc_info=True)
            continue
        if not journal.pending():
            return
        pause = min(pause * 2, 30.0)


async def _record_failure(
    call: _Call, error: BaseException, *, consumed: bool = False, usage: TokenUsage | None = None
) -> None:
    """Settle a failed call: free if nothing was consumed, else what the
    provider reported or, without a report, the reservation."""
    code = error.code if isinstance(error, ApiError) else "internal_error"
    if consumed:
        event = _event(
            call,
            status=EventStatus.INCOMPLETE,
            usage=usage or _reservation_as_usage(call),
            error_code=code,
            flag_reason="The upstream failed mid-answer after consuming tokens; "
            + ("its reported usage was charged." if usage else "the reservation was charged."),
        )
    else:
        event = _event(call, status=EventStatus.ERROR, error_code=code)
    try:
        await _settle(call, event)
    except ServiceUnavailable:
        pass  # journaled
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
    # What the model wrote is stored in the charging transaction: text we can't
    # store (NUL, lone surrogates) must not make the charge fail.
    text = scrub(text)
    caller = call.caller
    touch = caller.api_key.pk if caller.api_key and call.touch_key else None
    event = _event(
        call,
        status=status,
        usage=usage,
        upstream_request_id=scrub(upstream_request_id),
        flag_reason=flag,
    )
    feature_hook = call.on_recorded
    record = await _settle(
        call,
        event,
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


def _as_api_error(error: BaseException) -> ApiError:
    if isinstance(error, TimeoutError):  # the meter's own deadline
        return UpstreamTimeout()
    if isinstance(error, Exception):
        return to_api_error(error) or UpstreamError()
    return UpstreamError()


async def _run_complete(call: _Call) -> Completion:
    async with _admission():
        await _admit(call)
    try:
        # The meter's deadline per call: a claim or reservation older than it
        # belongs to a call that can no longer run (see usage.idempotency).
        async with asyncio.timeout(settings.TOLLGATE_MAX_CALL_SECONDS):
            result = await get_upstream().chat(
                model=call.model,
                messages=call.messages,
                max_output_tokens=call.max_output_tokens,
                safety_identifier=call.caller.user.safety_identifier,
                response_format=call.response_format,
            )
    except BaseException as error:
        await _record_failure(call, error)
        if isinstance(error, TimeoutError):
            raise UpstreamTimeout() from None
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
        async with _admission():
            await _admit(call)
    except BaseException as error:
        queue.put_nowait(_as_api_error(error))
        return
    parts: list[str] = []
    usage = None
    upstream_id = ""
    finish = None
    if call.stop_requested:  # stopped before the request went out: nothing used
        await _record_stopped(call, text="", usage=TokenUsage(0, 0, 0), upstream_request_id="")
        return
    call.upstream_open = True
    try:
        async with asyncio.timeout(settings.TOLLGATE_MAX_CALL_SECONDS):
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
                    delta = scrub(chunk.delta)
                    parts.append(delta)
                    queue.put_nowait(delta)
        call.upstream_open = False
    except BaseException as error:
        call.upstream_open = False
        if call.stop_requested and isinstance(error, asyncio.CancelledError):
            await _record_stopped(
                call, text="".join(parts), usage=usage, upstream_request_id=upstream_id
            )
            return
        # Tokens were consumed if anything came back: charge the reported usage,
        # else the reservation.
        await _record_failure(call, error, consumed=bool(parts or usage), usage=usage)
        failure = _as_api_error(error)
        failure.details.setdefault("request_id", call.request_id)
        queue.put_nowait(failure)
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
        queue.put_nowait(_as_api_error(error))
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
    consumer closes the stream early (Stop), the upstream stream is closed and
    what was produced is recorded before the close returns (see `_stop`)."""
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
    pump = _keep_alive(_pump(call, queue))
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not pump.done():
            await _stop(call, pump)


# --- Stop ------------------------------------------------------------------------
# A consumer that closes the stream early (the chat's Stop button) ends the
# upstream generation: we close the upstream stream and charge what was
# produced — the upstream's usage if it already arrived, else the prompt
# estimate plus a tokenizer count of the text received, flagged
# "stopped_estimated". The event's status is `stopped`.


async def _stop(call: _Call, pump: asyncio.Task) -> None:
    """Stop the call and wait until it is recorded (so the caller can read it)."""
    call.stop_requested = True
    if call.upstream_open:
        pump.cancel()  # raises inside the upstream read; chat_stream closes the stream
    try:
        await asyncio.shield(pump)
    except asyncio.CancelledError:
        await pump  # we were cancelled too (client gone): still wait for the record


async def _record_stopped(
    call: _Call, *, text: str, usage: TokenUsage | None, upstream_request_id: str
) -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()  # the cancellation was our own Stop: settle normally
    flag = ""
    if usage is None:
        usage = TokenUsage(call.input_estimate, 0, count_tokens(text, call.model))
        flag = "stopped_estimated: stopped before the upstream reported usage; tokenizer count."
    event = _event(
        call,
        status=EventStatus.STOPPED,
        usage=usage,
        upstream_request_id=upstream_request_id,
        flag_reason=flag,
    )
    hook = call.on_recorded
    try:
        await _settle(call, event, on_recorded=(lambda e: hook(e, text)) if hook else None)
    except ServiceUnavailable:
        pass  # journaled
    except Exception:
        logger.exception("could not settle stopped call %s", call.request_id)
    _keep_alive(
        ratelimit.adjust_tokens(call.rate_limits, call.window, usage.total_tokens - call.estimate)
    )


async def drain_in_flight(timeout: float = 10.0) -> None:
    """Wait for calls still settling in the background (tests, shutdown)."""
    pending = [t for t in _in_flight if not t.done() and t not in _replaying]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


async def shut_down(timeout: float) -> int:
    """Graceful shutdown: refuse new calls (503), let the calls in flight be
    read to their end and settle, within `timeout` seconds. Returns how many
    were still running (their reservations are charged or freed by the
    recovery task, so nothing is lost either way)."""
    global _accepting
    _accepting = False
    await drain_in_flight(timeout)
    left = [t for t in _in_flight if not t.done() and t not in _replaying]
    if left:
        logger.warning("shutdown: %d metered calls still running after %.0fs", len(left), timeout)
    return len(left)


def start_accepting() -> None:
    global _accepting
    _accepting = True

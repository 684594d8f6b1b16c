"""The moderation pre-screen: every input goes to the provider's moderation
endpoint before the model (unless an operator turned it off); every screen is
logged; a flagged input is refused (422 content_flagged) and not charged; a
person flagged `suspend_after_flags` times is suspended.

`screen(text)` is the hot path's way to the moderation endpoint: results of
recent inputs are kept per process by content hash (a repeated input costs no
request; every call is still logged), and inputs arriving within
`TOLLGATE_MODERATION_BATCH_MS` of each other share one request (the endpoint
takes a list)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import threading
import time
import weakref
from collections import OrderedDict

from django.conf import settings
from django.db import transaction

from accounts.models import User
from config import clock
from usage.models import ModerationLog, ModerationSettings
from usage.upstream import ModerationResult

EXCERPT_CHARS = 200
_settings_cache: list = [0.0, None]
_lock = threading.Lock()


def cached_settings() -> ModerationSettings | None:
    """The settings if read recently (no query), else None."""
    expires, cached = _settings_cache
    if cached is not None and expires > time.monotonic():
        return cached
    return None


def current_settings() -> ModerationSettings:
    """The operator's settings, re-read at most every few seconds."""
    cached = cached_settings()
    if cached is not None:
        return cached
    fresh = ModerationSettings.current()
    with _lock:
        _settings_cache[:] = [time.monotonic() + settings.TOLLGATE_MODERATION_CACHE_SECONDS, fresh]
    return fresh


def screening_enabled(screen: ModerationSettings) -> bool:
    """On unless the environment (TOLLGATE_MODERATION=off) or an operator in
    admin turned it off."""
    if str(settings.TOLLGATE_MODERATION).strip().lower() in ("off", "false", "0", "no"):
        return False
    return screen.enabled


def clear_cache() -> None:
    _settings_cache[:] = [0.0, None]
    _results.clear()


# --- The screen: a result cache by content hash, and micro-batching -----------

MAX_BATCH = 32  # inputs per /moderations request
_results: OrderedDict[str, tuple[float, ModerationResult]] = OrderedDict()


def _content_key(text: str) -> str:
    model = settings.OPENAI_MODERATION_MODEL
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()


def _cached_result(key: str) -> ModerationResult | None:
    hit = _results.get(key)
    if hit is None or hit[0] <= time.monotonic():
        return None
    _results.move_to_end(key)
    return hit[1]


def _remember_result(key: str, result: ModerationResult) -> None:
    _results[key] = (time.monotonic() + settings.TOLLGATE_MODERATION_RESULT_SECONDS, result)
    _results.move_to_end(key)
    while len(_results) > settings.TOLLGATE_MODERATION_RESULT_ENTRIES:
        _results.popitem(last=False)


class _Batch:
    """Inputs waiting for the next /moderations request on one event loop."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[str, asyncio.Future]] = {}
        self.scheduled = False

    def add(self, key: str, text: str) -> asyncio.Future:
        entry = self.waiting.get(key)
        if entry is not None:  # the same input twice in one batch: one result
            return entry[1]
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting[key] = (text, future)
        if len(self.waiting) >= MAX_BATCH:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            loop.call_later(settings.TOLLGATE_MODERATION_BATCH_MS / 1000, self.flush)
        return future

    def flush(self) -> None:
        self.scheduled = False
        items, self.waiting = self.waiting, {}
        if items:
            task = asyncio.ensure_future(_send(items))
            _sending.add(task)
            task.add_done_callback(_sending.discard)


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()
_sending: set[asyncio.Task] = set()


async def _send(items: dict[str, tuple[str, asyncio.Future]]) -> None:
    from usage.upstream import get_upstream

    keys = list(items)
    try:
        results = await get_upstream().moderate_many([items[k][0] for k in keys])
    except BaseException as error:  # every waiter gets the failure, as its own copy
        for key in keys:
            future = items[key][1]
            if not future.done():
                future.set_exception(copy.copy(error))
        if not isinstance(error, Exception):
            raise
        return
    for key, result in zip(keys, results, strict=True):
        _remember_result(key, result)
        future = items[key][1]
        if not future.done():
            future.set_result(result)


async def screen(text: str) -> ModerationResult:
    """The moderation verdict for `text`: cached, or from a shared request."""
    key = _content_key(text)
    cached = _cached_result(key)
    if cached is not None:
        return cached
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = _Batch()
    # Shielded: one waiter giving up doesn't cancel the others' request.
    return await asyncio.shield(batch.add(key, text))


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def log_entry(*, caller, request_id: str, text: str, result) -> ModerationLog:
    """An unsaved log row: it is written in the transaction that settles the call."""
    return ModerationLog(
        workspace_id=caller.workspace.pk,
        user_id=caller.user.pk,
        request_id=request_id,
        flagged=result.flagged,
        categories=sorted(name for name, hit in result.categories.items() if hit),
        excerpt=excerpt(text),
        model=result.model or "",
    )


def suspend_if_repeatedly_flagged(*, user_id: int) -> bool:
    """Called inside the transaction that logged a flag."""
    limit = current_settings().suspend_after_flags
    if not limit:
        return False
    flags = ModerationLog.objects.filter(user_id=user_id, flagged=True).count()
    if flags < limit:
        return False
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if user.is_suspended:
            return False
        user.is_suspended = True
        user.suspended_at = clock.now()
        user.suspended_reason = (
            f"Suspended automatically after {flags} inputs were flagged by the content "
            "pre-screen. Contact support to appeal."
        )
        user.save(update_fields=["is_suspended", "suspended_at", "suspended_reason"])
    return True

"""The registry's runner: the one way a feature call reaches the model.

Every metered call — a summary, an extraction, a chat message, any registered
feature — walks the same way: its use case hands the feature and its validated
input here; the runner asks the feature for the prompt, the output limit and the
answer's shape, and passes them to the meter (`usage.metering`); the feature's
result is stored by the use case's `store` inside the transaction that charges
the call. `run_feature` waits for the whole answer (a malformed one is asked for
again as many times as the feature declares, each attempt metered on its own);
`stream_feature` hands the meter's stream on piece by piece.

The plan's allow-list: the runner asks first (`check_allowed`, the registry's
sentence and upgrade link), before the meter screens or reserves anything; a
feature found allowed is remembered for a few seconds per workspace, so a warm
call costs no extra query. The meter's reservation re-checks in the transaction
that holds the tokens (authoritative), and the runner words that refusal the
registry's way too."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ai_features.registry import Feature, MalformedAnswer, ensure_allowed, get_feature
from config.errors import Forbidden, UpstreamError

logger = logging.getLogger(__name__)


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


@dataclass
class FeatureRun:
    result: Any
    model: str
    request_id: str  # of the attempt whose answer was used
    completions: list[Any] = field(default_factory=list)
    record: Any = None  # what `store` returned

    @property
    def attempts(self) -> int:
        return len(self.completions)

    def usage(self) -> dict[str, int]:
        """What this call cost, all attempts together (what the ledger holds)."""
        totals = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}
        for completion in self.completions:
            for key in totals:
                totals[key] += getattr(completion.usage, key)
        totals["total_tokens"] = totals["input_tokens"] + totals["output_tokens"]
        return totals


ALLOWED_CACHE_SECONDS = 10
_allowed: dict[tuple[int, str], float] = {}  # (workspace id, slug) -> allowed until


async def check_allowed(feature: Feature | str, workspace) -> Feature:
    """Ask before doing work a refusal would waste (403 `forbidden` with the
    upgrade link). Only a yes is remembered: an upgrade applies at once.

    A yes from the limits the meter keeps in this process is enough: the meter
    re-checks the feature under the limits' current version before it reserves
    anything (a downgrade made a moment ago is refused there, in these words,
    see `_worded`). Without it, every call in flight when the remembered yes
    expired read the database at once (~2% of a worker's CPU under load)."""
    from usage.dbpool import run_db
    from usage.limits import cached_limits

    slug = feature if isinstance(feature, str) else feature.slug
    key = (workspace.pk, slug)
    if _allowed.get(key, 0.0) > time.monotonic():
        return get_feature(slug) if isinstance(feature, str) else feature
    limits = cached_limits(workspace.pk)
    if limits is not None and limits.allows_feature(slug):
        return get_feature(slug) if isinstance(feature, str) else feature
    found = await run_db(ensure_allowed, feature, workspace)
    _allowed[key] = time.monotonic() + ALLOWED_CACHE_SECONDS
    return found


async def _worded(refusal: Forbidden, feature: Feature, workspace) -> Exception:
    """The meter refused the feature for the plan: say so in the registry's words."""
    if refusal.details.get("feature") != feature.slug:
        return refusal  # another refusal (role, suspension): as it is
    _allowed.pop((workspace.pk, feature.slug), None)
    try:
        await check_allowed(feature, workspace)
    except Forbidden as worded:
        return worded
    return refusal


@dataclass(frozen=True)
class _Malformed:
    reason: str


def _usage_with(run: FeatureRun, event) -> dict[str, int]:
    """The run's usage including `event`, whose Completion doesn't exist yet."""
    usage = run.usage()
    for key in ("input_tokens", "cached_input_tokens", "output_tokens"):
        usage[key] += getattr(event, key)
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return usage


async def run_feature(
    *,
    caller,
    feature: Feature,
    value: Any,
    request_id: str | None = None,
    moderation_text: str | None = None,
    store: Callable[[Any, Any, dict[str, int], int], Any] | None = None,
) -> FeatureRun:
    """Call the meter until the answer parses (at most 1 + answer_retries times).

    `store(event, result, usage, attempts)` runs inside the meter's charging transaction
    of the attempt whose answer parsed (usage: all attempts so far), so the
    feature's result and its charge are written together; its return value
    becomes `run.record`."""
    from usage import metering

    await check_allowed(feature, caller.workspace)
    base_id = request_id or new_request_id()
    run = FeatureRun(result=None, model=feature.model, request_id=base_id)

    def on_recorded(event, text: str):
        try:
            result = feature.parse(text, value)
        except MalformedAnswer as exc:
            return _Malformed(str(exc))
        if store is None:
            return (result, None)
        return (result, store(event, result, _usage_with(run, event), run.attempts + 1))

    for attempt in range(feature.answer_retries + 1):
        attempt_id = base_id if attempt == 0 else f"{base_id}-retry{attempt}"
        try:
            completion = await metering.complete(
                caller=caller,
                feature=feature.slug,
                messages=feature.build_messages(value),
                max_output_tokens=feature.output_limit(value),
                model=feature.model,
                response_format=feature.response_format(value),
                request_id=attempt_id,
                moderation_text=moderation_text,
                on_recorded=on_recorded,
            )
        except Forbidden as refusal:
            raise await _worded(refusal, feature, caller.workspace) from None
        run.completions.append(completion)
        if isinstance(completion.record, _Malformed):
            logger.warning(
                "malformed answer",
                extra={
                    "feature": feature.slug,
                    "request_id": attempt_id,
                    "reason": completion.record.reason,
                },
            )
            continue
        run.result, run.record = completion.record
        run.model, run.request_id = completion.model, completion.request_id
        return run
    raise UpstreamError(
        f"The model's answer did not have the requested shape, {run.attempts} times in a row. "
        "Try again, or make the fields simpler and their descriptions clearer. "
        "The tokens those attempts used were counted.",
        details={
            "attempts": run.attempts,
            "request_ids": [c.request_id for c in run.completions],
            "usage": run.usage(),
        },
    )


def stream_feature(
    *,
    caller,
    feature: Feature,
    value: Any,
    request_id: str | None = None,
    moderation_text: str | None = None,
    on_recorded: Callable[[Any, str], Any] | None = None,
) -> AsyncIterator[Any]:
    """The streamed walk: the meter's stream (text pieces, then the Completion),
    handed on as it is, so closing it (Stop) ends the call and records what was produced.
    `on_recorded(event, text)` runs in the charging transaction."""
    from usage import metering

    # Chat asks `check_allowed` itself, before it saves the turn.
    return metering.stream(
        caller=caller,
        feature=feature.slug,
        messages=feature.build_messages(value),
        max_output_tokens=feature.output_limit(value),
        model=feature.model,
        request_id=request_id,
        moderation_text=moderation_text,
        on_recorded=on_recorded,
    )

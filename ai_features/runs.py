"""Run a registered feature once through the meter — the only way features
reach the upstream (`usage.metering`). A malformed answer is asked for again
as many times as the feature declares; every attempt is metered on its own
(each is a separate upstream call with its own usage event)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from ai_features.registry import Feature, MalformedAnswer, ensure_allowed
from config.errors import UpstreamError

logger = logging.getLogger(__name__)


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


@dataclass
class FeatureRun:
    result: Any
    model: str
    request_id: str  # of the attempt whose answer was used
    completions: list[Any] = field(default_factory=list)

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


async def check_allowed(feature: Feature | str, workspace) -> Feature:
    return await sync_to_async(ensure_allowed)(feature, workspace)


async def run_feature(
    *,
    caller,
    feature: Feature,
    value: Any,
    request_id: str | None = None,
    moderation_text: str | None = None,
) -> FeatureRun:
    from usage import metering

    await check_allowed(feature, caller.workspace)
    base_id = request_id or new_request_id()
    run = FeatureRun(result=None, model=feature.model, request_id=base_id)
    for attempt in range(feature.answer_retries + 1):
        attempt_id = base_id if attempt == 0 else f"{base_id}-retry{attempt}"
        completion = await metering.complete(
            caller=caller,
            feature=feature.slug,
            messages=feature.build_messages(value),
            max_output_tokens=feature.output_limit(value),
            model=feature.model,
            response_format=feature.response_format(value),
            request_id=attempt_id,
            moderation_text=moderation_text,
        )
        run.completions.append(completion)
        try:
            run.result = feature.parse(completion.text, value)
        except MalformedAnswer as exc:
            logger.warning(
                "malformed answer",
                extra={"feature": feature.slug, "request_id": attempt_id, "reason": str(exc)},
            )
            continue
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

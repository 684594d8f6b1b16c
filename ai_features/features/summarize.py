"""Summarize: condense text or a document into a short, medium or long summary.

The whole feature in one module: its input rules and prompt (the registry's
`Feature`), the use case both the page and `POST /api/v1/summaries` call
(`summary_run`, one walk through `ai_features.runs`), and the read of a stored
summary (`get_summary`). The `Summary` row is written inside the transaction
that charges the call."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ai_features.documents import check_input_length
from ai_features.models import Summary
from ai_features.registry import Feature, get_feature, register
from ai_features.runs import run_feature
from config.errors import InvalidRequest, NotFound
from usage.rows import insert

SLUG = "summarize"
LENGTH_TOKENS = {"short": 200, "medium": 500, "long": 1000}  # max output tokens
LENGTH_GUIDE = {
    "short": "in 2-3 sentences (or at most 3 bullets)",
    "medium": "in one or two paragraphs (or 5-8 bullets)",
    "long": "thoroughly, covering every main point (or up to 15 bullets)",
}
FORMATS = ("paragraph", "bullets")


@dataclass(frozen=True)
class SummarizeInput:
    text: str
    length: str = "medium"
    format: str = "paragraph"


@register
class Summarize(Feature):
    slug = SLUG
    name = "Summarize"
    description = "Condense text or a document into a short, medium or long summary."
    order = 10
    page_url_name = "ai_features:summarize"
    max_output_tokens = max(LENGTH_TOKENS.values())

    def validate(self, data: Mapping[str, Any]) -> SummarizeInput:
        """Every field checked at once, so the page can mark each wrong one."""
        text, length, format = data.get("text"), data.get("length"), data.get("format")
        errors: dict[str, list[str]] = {}
        if not isinstance(text, str) or not text.strip():
            errors["text"] = ["Give the text to summarize (or upload a document)."]
        length = "medium" if length in (None, "") else length
        format = "paragraph" if format in (None, "") else format
        if length not in LENGTH_TOKENS:
            errors["length"] = [f"Must be one of: {', '.join(LENGTH_TOKENS)}."]
        if format not in FORMATS:
            errors["format"] = [f"Must be one of: {', '.join(FORMATS)}."]
        if errors:
            raise InvalidRequest("Some fields are not valid.", details=errors)
        assert isinstance(text, str)  # checked above; tells the type checker
        check_input_length(text)
        return SummarizeInput(text=text.strip(), length=str(length), format=str(format))

    def build_messages(self, value: SummarizeInput) -> list[dict[str, str]]:
        shape = (
            "as a bulleted list (one '- ' per line)" if value.format == "bullets" else "as prose"
        )
        system = (
            "You are a precise summarizer. Summarize the user's text "
            f"{LENGTH_GUIDE[value.length]}, {shape}. Keep the source's language. "
            "State only what the text says; no preamble."
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": value.text}]

    def output_limit(self, value: SummarizeInput) -> int:
        return LENGTH_TOKENS[value.length]

    def parse(self, text: str, value: SummarizeInput) -> str:
        return text  # the summary as the model wrote it


def fingerprint(value: SummarizeInput) -> str:
    """What makes two requests the same call (for `Idempotency-Key`)."""
    from usage.idempotency import fingerprint_of

    return fingerprint_of(SLUG, value.text, value.length, value.format)


async def summary_run(*, caller, value: SummarizeInput, source: str = "", claim=None) -> Summary:
    """Run one metered summary. The Summary row (and, given a claim, the
    idempotent response) is written in the transaction that charges the call."""

    def store(event, result: str, usage: dict[str, int], attempts: int) -> Summary:
        summary = Summary(
            workspace_id=event.workspace_id,
            user_id=event.user_id,
            api_key_id=event.api_key_id,
            request_id=event.request_id,
            source=source[:255],
            input_chars=len(value.text),
            length=value.length,
            format=value.format,
            summary=result,
            model=event.model,
            usage=usage,
        )
        insert(summary)  # one prepared INSERT: this runs on every metered call
        if claim is not None:
            claim.store(status=201, body=summary.as_api(), request_id=event.request_id)
        return summary

    run = await run_feature(
        caller=caller,
        feature=get_feature(SLUG),
        value=value,
        moderation_text=value.text,
        store=store,
    )
    return run.record


def get_summary(*, workspace, user, pk: str) -> Summary:
    """One of the person's own summaries: private like their documents and chats
    (another member — an admin too — or another workspace gets 404)."""
    try:
        return Summary.objects.for_workspace(workspace).get(user=user, pk=uuid.UUID(str(pk)))
    except (Summary.DoesNotExist, ValueError):
        raise NotFound() from None


def recent_summaries(*, workspace, user, limit: int = 5):
    return Summary.objects.for_workspace(workspace).filter(user=user)[:limit]

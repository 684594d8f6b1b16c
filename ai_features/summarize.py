"""Summarize: the first finished feature. Input rules, the prompt, and the
one use case both the page and the API call."""

from __future__ import annotations

from dataclasses import dataclass

from ai_features.documents import check_input_length
from ai_features.models import Summary
from config.errors import InvalidRequest
from usage.idempotency import Claim, Outcome, fingerprint_of
from usage.metering import Caller, complete

FEATURE = "summarize"
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
    source: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(FEATURE, self.text, self.length, self.format)


def validate(*, text: object, length: object, format: object, source: str = "") -> SummarizeInput:
    """Check the input against the documented limits; clear errors per field."""
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
    check_input_length(text)
    return SummarizeInput(text=text.strip(), length=length, format=format, source=source)


def build_messages(inp: SummarizeInput) -> list[dict]:
    shape = "as a bulleted list (one '- ' per line)" if inp.format == "bullets" else "as prose"
    system = (
        "You are a precise summarizer. Summarize the user's text "
        f"{LENGTH_GUIDE[inp.length]}, {shape}. Keep the source's language. "
        "State only what the text says; no preamble."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": inp.text}]


async def summarize(*, caller: Caller, inp: SummarizeInput, claim: Claim | None = None) -> Outcome:
    """Run one metered summary; the result is stored in the charging transaction."""

    def store(event, text: str) -> Summary:
        summary = Summary.objects.create(
            workspace_id=event.workspace_id,
            user_id=event.user_id,
            api_key_id=event.api_key_id,
            request_id=event.request_id,
            source=inp.source[:255],
            input_chars=len(inp.text),
            length=inp.length,
            format=inp.format,
            summary=text,
            model=event.model,
            usage={
                "input_tokens": event.input_tokens,
                "cached_input_tokens": event.cached_input_tokens,
                "output_tokens": event.output_tokens,
                "total_tokens": event.total_tokens,
            },
        )
        if claim is not None:
            claim.store(status=201, body=summary.as_api(), request_id=event.request_id)
        return summary

    completion = await complete(
        caller=caller,
        feature=FEATURE,
        messages=build_messages(inp),
        max_output_tokens=LENGTH_TOKENS[inp.length],
        moderation_text=inp.text,
        on_recorded=store,
    )
    summary: Summary = completion.record
    return Outcome(201, summary.as_api(), completion.request_id)

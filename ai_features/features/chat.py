"""Chat: a conversation with saved history, answered as a stream.

The history sent upstream is trimmed, oldest first, to fit a token budget: the
model's context window minus the answer's room, capped by
TOLLGATE_CHAT_HISTORY_TOKENS so long conversations stay affordable. How many
messages were left out is returned so the page can say so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ai_features.registry import Feature, register
from config.errors import InvalidRequest, PayloadTooLarge

# Context windows of the models we offer (tokens); unknown models get the smallest.
CONTEXT_WINDOWS = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-4.1": 1_047_576,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
}
DEFAULT_CONTEXT_WINDOW = 16_000
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per chat message


@dataclass(frozen=True)
class ChatTurn:
    content: str
    stream: bool


@dataclass(frozen=True)
class FittedHistory:
    messages: list[dict[str, str]]  # what goes upstream, system prompt first
    omitted: int  # earlier messages left out to fit the budget


def _tokens(message: Mapping[str, str], model: str) -> int:
    from usage.tokens import count_tokens

    return count_tokens(message["content"], model) + MESSAGE_OVERHEAD_TOKENS


@register
class Chat(Feature):
    slug = "chat"
    name = "Chat"
    description = "Conversations with saved history and answers that stream in as they are written."
    order = 30
    page_url_name = "ai_features:chat_list"
    max_output_tokens = 1024
    max_input_chars = 20_000
    system_prompt = (
        "You are Tollgate's helpful assistant. Answer clearly and concisely. "
        "Use Markdown only when it helps."
    )

    def validate(self, data: Mapping[str, Any]) -> ChatTurn:
        content = self.clean_text(data, field="content")
        stream = data.get("stream", False)
        if not isinstance(stream, bool):
            raise InvalidRequest(
                "“stream” must be true or false.", details={"stream": ["Must be a boolean."]}
            )
        return ChatTurn(content=content, stream=stream)

    @property
    def history_budget(self) -> int:
        window = CONTEXT_WINDOWS.get(self.model, DEFAULT_CONTEXT_WINDOW)
        return min(window - self.max_output_tokens, settings.TOLLGATE_CHAT_HISTORY_TOKENS)

    def fit_history(self, history: list[dict[str, str]]) -> FittedHistory:
        """Keep the newest messages that fit the budget; the last one (the user's
        new message) must fit on its own."""
        system = {"role": "system", "content": self.system_prompt}
        remaining = self.history_budget - _tokens(system, self.model)
        kept: list[dict[str, str]] = []
        for message in reversed(history):
            cost = _tokens(message, self.model)
            if cost > remaining:
                break
            kept.append(message)
            remaining -= cost
        if not kept:
            raise PayloadTooLarge(
                "Your message is too long for this model's context. Shorten it and send again.",
                details={"content": [f"At most about {self.history_budget} tokens."]},
            )
        kept.reverse()
        return FittedHistory(messages=[system, *kept], omitted=len(history) - len(kept))

    def build_messages(self, value: FittedHistory | list[dict[str, str]]) -> list[dict[str, str]]:
        """The history as fitted by `fit_history` (conversations fit it once, to
        tell the page what was left out), or a raw history to fit now."""
        if isinstance(value, FittedHistory):
            return value.messages
        return self.fit_history(value).messages

    def parse(self, text: str, value: Any) -> str:
        return text  # the answer as written (streamed answers are kept as sent)

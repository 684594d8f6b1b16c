"""What a feature is. A subclass fills in the class attributes and overrides
`validate`, `build_messages` and, when the answer has a shape, `response_format`
and `parse`. Features never call the upstream themselves: the runner
(`ai_features.runs`) passes what they declare to `usage.metering`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings

from config.errors import Forbidden, InvalidRequest, PayloadTooLarge


class FeatureNotAllowed(Forbidden):
    default_message = "This feature is not included in your workspace's plan."


class MalformedAnswer(Exception):
    """The model's answer does not have the declared shape (the runner retries)."""


class Feature:
    slug: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    order: ClassVar[int] = 100  # position in menus
    page_url_name: ClassVar[str | None] = None  # "ai_features:<name>"
    system_prompt: ClassVar[str] = ""
    max_output_tokens: ClassVar[int] = 1024
    # Longest text input; None: the documented limit (TOLLGATE_MAX_INPUT_CHARS).
    max_input_chars: ClassVar[int | None] = None
    # How many times a malformed answer is asked again before giving up.
    answer_retries: ClassVar[int] = 0

    @property
    def model(self) -> str:
        return settings.TOLLGATE_FEATURE_MODELS.get(self.slug) or settings.TOLLGATE_FEATURE_MODEL

    @property
    def input_char_limit(self) -> int:
        return self.max_input_chars or settings.TOLLGATE_MAX_INPUT_CHARS

    def validate(self, data: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def build_messages(self, value: Any) -> list[dict[str, str]]:
        raise NotImplementedError

    def response_format(self, value: Any) -> dict[str, Any] | None:
        return None

    def parse(self, text: str, value: Any) -> Any:
        return text.strip()

    # --- shared validation helpers -------------------------------------------------

    def clean_text(self, data: Mapping[str, Any], field: str = "text") -> str:
        raw = data.get(field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidRequest(
                "Give some text to work on (or upload a document).",
                details={field: ["This field is required and may not be blank."]},
            )
        if not isinstance(raw, str):
            raise InvalidRequest(
                f"“{field}” must be a string.", details={field: ["Must be a string."]}
            )
        limit = self.input_char_limit
        if len(raw) > limit:
            raise PayloadTooLarge(
                f"The text is {len(raw):,} characters; {self.name} accepts at most "
                f"{limit:,}. Shorten it or split it into parts.",
                details={field: [f"At most {limit} characters."]},
            )
        return raw.strip()

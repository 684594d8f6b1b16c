"""Summarize: condense text or a document. The input rules and the prompt live
in `ai_features.summarize` (the meter's use case, which also stores the result
in the charging transaction); this declares the feature to the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai_features import summarize as use_case
from ai_features.registry import Feature, register


@register
class Summarize(Feature):
    slug = use_case.FEATURE
    name = "Summarize"
    description = "Condense text or a document into a short, medium or long summary."
    order = 10
    page_url_name = "ai_features:summarize"
    max_output_tokens = max(use_case.LENGTH_TOKENS.values())

    def validate(self, data: Mapping[str, Any]) -> use_case.SummarizeInput:
        return use_case.validate(
            text=data.get("text"), length=data.get("length"), format=data.get("format")
        )

    def build_messages(self, value: use_case.SummarizeInput) -> list[dict[str, str]]:
        return use_case.build_messages(value)

    def output_limit(self, value: use_case.SummarizeInput) -> int:
        return use_case.LENGTH_TOKENS[value.length]

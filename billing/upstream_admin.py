"""The upstream organization's own figures: the OpenAI Usage API
(`/v1/organization/usage/completions`) and Costs API (`/v1/organization/costs`),
read with the *admin* key (OPENAI_ADMIN_KEY, never the call key) through the
installed SDK's `client.admin.organization.usage` (openai ≥ 3.x). Pages are
followed through `next_page`; the SDK retries 429/5xx/connection errors."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

import openai
from django.conf import settings

MAX_PAGES = 100  # a day has one bucket; this only bounds a misbehaving server


@dataclass
class UpstreamFigures:
    """Per (model, key/project): requests, input, cached input, output, cost."""

    requests: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    input_tokens: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    cached_input_tokens: dict[tuple[str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    output_tokens: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    cost: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    cost_reported: bool = False

    def keys(self) -> set[tuple[str, str]]:
        return set(self.requests) | set(self.input_tokens) | set(self.cost)


def is_configured() -> bool:
    return bool(settings.OPENAI_ADMIN_KEY)


def scope() -> tuple[str, str]:
    """('api_key_id' | 'project_id' | '', id): which of the org's traffic is ours."""
    ident = settings.OPENAI_UPSTREAM_KEY_ID
    if not ident:
        return "", ""
    return ("project_id" if ident.startswith("proj_") else "api_key_id"), ident


def client() -> openai.OpenAI:
    """One client per process and settings (building one loads TLS certificates)."""
    return _client(
        settings.OPENAI_ADMIN_KEY,
        settings.OPENAI_ADMIN_BASE_URL or settings.OPENAI_BASE_URL,
        settings.OPENAI_ORG_ID,
        settings.OPENAI_MAX_RETRIES,
        settings.OPENAI_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=4)
def _client(key: str, base_url: str | None, org: str | None, retries: int, timeout: float):
    return openai.OpenAI(
        admin_api_key=key,
        base_url=base_url,
        organization=org,
        max_retries=retries + 2,
        timeout=timeout,
    )


def _day_bounds(day: date) -> tuple[int, int]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def _query(day: date) -> dict:
    start, end = _day_bounds(day)
    group, ident = scope()
    query: dict = {"start_time": start, "end_time": end, "bucket_width": "1d", "limit": 31}
    if ident:
        query[f"{group}s"] = [ident]
    return query


def _pages(fetch, query: dict):
    page = None
    for _ in range(MAX_PAGES):
        response = fetch(**query, **({"page": page} if page else {}))
        yield response
        if not response.has_more or not response.next_page:
            return
        page = response.next_page


def fetch_day(day: date) -> UpstreamFigures:
    """The upstream's usage and costs of one UTC day, grouped by model (and by
    the configured key/project). Costs arrive as floats: Decimal(str(value))."""
    usage_api = client().admin.organization.usage
    group, _ident = scope()
    figures = UpstreamFigures()
    group_by = ["model", group] if group else ["model"]
    for response in _pages(usage_api.completions, {**_query(day), "group_by": group_by}):
        for bucket in response.data:
            for result in bucket.results:
                key = (result.model or "", (getattr(result, group, None) or "") if group else "")
                figures.requests[key] += result.num_model_requests
                figures.input_tokens[key] += result.input_tokens
                figures.cached_input_tokens[key] += result.input_cached_tokens or 0
                figures.output_tokens[key] += result.output_tokens
    cost_group = ["line_item", group] if group else ["line_item"]
    for response in _pages(usage_api.costs, {**_query(day), "group_by": cost_group}):
        for bucket in response.data:
            for result in bucket.results:
                if result.amount is None or result.amount.value is None:
                    continue
                # A line item reads "<model>, <part>": the cost belongs to the model.
                model = (result.line_item or "").split(",")[0].strip()
                key = (model, (getattr(result, group, None) or "") if group else "")
                figures.cost[key] += Decimal(str(result.amount.value))
                figures.cost_reported = True
    return figures

"""The organization Usage and Costs APIs of the fake upstream, computed from
what this server actually served (so a day of real traffic reconciles to zero
drift), with a fault switch that makes them disagree.

- `GET /v1/organization/usage/completions` — `start_time`, `end_time`,
  `bucket_width` (1d; 1h also works), `group_by` (model, api_key_id,
  project_id), `models`, `api_key_ids`, `project_ids`, `limit`, `page`
  (cursor = next_page), `has_more`.
- `GET /v1/organization/costs` — daily buckets, `group_by` line_item /
  api_key_id / project_id, amounts in USD as floats (like the real API).
- Both need a Bearer key (the admin key).
- Faults: `POST /_control/org_usage {"drop_requests": N, "extra_input_tokens": M,
  "extra_output_tokens": K, "cost_factor": "1.1"}` — the reports leave out N
  served requests (and their tokens) and add the extra tokens to the first
  model of the day; cost_factor scales every cost. `{}` turns it off.
- `POST /_control/prices {"model": [input, cached_input, output]}` (USD per 1M)
  sets the prices the costs are computed at.

Everything served lands in `State.served`: (unix time, model, api key id,
input, cached input, output)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# USD per 1M tokens: input, cached input, output.
DEFAULT_PRICES: dict[str, tuple[str, str, str]] = {
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
}
PROJECT_ID = "proj_fake_tollgate"
DAY = 86_400


def key_id(api_key: str) -> str:
    """The upstream's id for a secret key (stable; never the key itself)."""
    return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass
class Served:
    at: float
    model: str
    api_key_id: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    requests: int = 1  # >1: an aggregate (benchmarks load a day per model at once)


@dataclass
class OrgBilling:
    served: list[Served] = field(default_factory=list)
    faults: dict[str, Any] = field(default_factory=dict)
    prices: dict[str, tuple[str, str, str]] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def reset(self) -> None:
        self.served.clear()
        self.faults.clear()
        self.prices = dict(DEFAULT_PRICES)

    def record(self, *, at: float, model: str, key: str, usage: dict) -> None:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        self.served.append(
            Served(
                at, model, key_id(key), usage["prompt_tokens"], cached, usage["completion_tokens"]
            )
        )

    # --- the reports -----------------------------------------------------------------

    def _window(self, start: int, end: int) -> list[Served]:
        rows = [s for s in self.served if start <= s.at < end]
        drop = int(self.faults.get("drop_requests", 0))
        return rows[drop:] if drop else rows

    def _group_key(self, row: Served, group_by: list[str]) -> tuple:
        values = {"model": row.model, "api_key_id": row.api_key_id, "project_id": PROJECT_ID}
        return tuple((name, values[name]) for name in group_by if name in values)

    def usage_buckets(self, *, start: int, end: int, width: int, group_by: list[str], filters):
        buckets = []
        for bucket_start in range(start - start % width, end, width):
            sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
            for row in self._window(max(start, bucket_start), min(end, bucket_start + width)):
                if not filters(row):
                    continue
                total = sums[self._group_key(row, group_by)]
                total[0] += row.requests
                total[1] += row.input_tokens
                total[2] += row.cached_input_tokens
                total[3] += row.output_tokens
            self._add_extra(sums)
            buckets.append(
                {
                    "object": "bucket",
                    "start_time": bucket_start,
                    "end_time": bucket_start + width,
                    "results": [
                        {
                            "object": "organization.usage.completions.result",
                            "num_model_requests": n,
                            "input_tokens": inp,
                            "input_cached_tokens": cached,
                            "output_tokens": out,
                            "input_audio_tokens": 0,
                            "output_audio_tokens": 0,
                            **{name: None for name in ("model", "api_key_id", "project_id")},
                            **dict(key),
                            "batch": None,
                            "user_id": None,
                            "service_tier": None,
                        }
                        for key, (n, inp, cached, out) in sorted(sums.items())
                    ],
                }
            )
        return buckets

    def _add_extra(self, sums: dict[tuple, list[int]]) -> None:
        extra_in = int(self.faults.get("extra_input_tokens", 0))
        extra_out = int(self.faults.get("extra_output_tokens", 0))
        if sums and (extra_in or extra_out):
            first = sorted(sums)[0]
            sums[first][1] += extra_in
            sums[first][3] += extra_out

    def cost_buckets(self, *, start: int, end: int, group_by: list[str], filters):
        factor = Decimal(str(self.faults.get("cost_factor", "1")))
        buckets = []
        for bucket_start in range(start - start % DAY, end, DAY):
            amounts: dict[tuple, Decimal] = defaultdict(Decimal)
            for row in self._window(max(start, bucket_start), min(end, bucket_start + DAY)):
                if not filters(row):
                    continue
                prices = [Decimal(p) for p in self.prices.get(row.model, ("0", "0", "0"))]
                parts = {
                    "input": (row.input_tokens - row.cached_input_tokens) * prices[0],
                    "cached input": row.cached_input_tokens * prices[1],
                    "output": row.output_tokens * prices[2],
                }
                for part, amount in parts.items():
                    scope = {
                        "line_item": f"{row.model}, {part}",
                        "api_key_id": row.api_key_id,
                        "project_id": PROJECT_ID,
                    }
                    key = tuple((name, scope[name]) for name in group_by if name in scope)
                    amounts[key] += amount / Decimal(1_000_000) * factor
            buckets.append(
                {
                    "object": "bucket",
                    "start_time": bucket_start,
                    "end_time": bucket_start + DAY,
                    "results": [
                        {
                            "object": "organization.costs.result",
                            # A float, as the real API sends it.
                            "amount": {"value": float(amount), "currency": "usd"},
                            **{n: None for n in ("line_item", "api_key_id", "project_id")},
                            **dict(key),
                        }
                        for key, amount in sorted(amounts.items())
                    ],
                }
            )
        return buckets


def page_of(buckets: list[dict], *, limit: int, page: str | None) -> dict:
    offset = int(page) if page and page.isdigit() else 0
    chunk = buckets[offset : offset + limit]
    more = offset + limit < len(buckets)
    return {
        "object": "page",
        "data": chunk,
        "has_more": more,
        "next_page": str(offset + limit) if more else None,
    }

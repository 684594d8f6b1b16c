"""Stripe's search query language, the part integrations use:
`metadata['workspace_id']:'42' AND status:'active'` (exact matches, AND only)."""

from __future__ import annotations

import re

from .context import Ctx
from .errors import invalid
from .forms import get_int, require

_CLAUSE = re.compile(
    r"""^\s*(metadata\[['"](?P<key>[^'"]+)['"]\]|(?P<field>[a-z_]+))\s*:\s*['"](?P<value>[^'"]*)['"]\s*$"""
)


def parse(query: str) -> list[tuple[str | None, str | None, str]]:
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise invalid(f"Unsupported search query clause: {part!r}", param="query")
        clauses.append((match.group("key"), match.group("field"), match.group("value")))
    return clauses


def matches(obj: dict, clauses) -> bool:
    for key, field, value in clauses:
        actual = obj.get("metadata", {}).get(key) if key else obj.get(field)
        if str(actual if actual is not None else "") != value:
            return False
    return True


def search(kind: str):
    def handler(ctx: Ctx) -> dict:
        clauses = parse(require(ctx.params, "query"))
        limit = get_int(ctx.params, "limit", 10)
        found = [o for o in ctx.state.find(kind) if matches(o, clauses)]
        return {
            "object": "search_result",
            "data": [ctx.render(o) for o in found[:limit]],
            "has_more": len(found) > limit,
            "next_page": None,
            "url": ctx.path,
        }

    return handler

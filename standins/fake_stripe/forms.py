"""Decode Stripe's form encoding (`items[0][price]=x`, `metadata[k]=v`,
`expand[]=y`) into nested dicts and lists, and read typed values from them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode(body: str) -> dict[str, Any]:
    """Nested params from a query string or form body; `a[0]` / `a[]` become lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise invalid(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _assign(root, parts, value)
    return _listify(root)


def _assign(node: dict[str, Any], parts: list[str], value: str) -> None:
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if part == "":  # `a[][b]` is not something the SDK sends
            raise invalid("Invalid array parameter", param=part)
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise invalid(f"Invalid parameter: {part}", param=part)
        node = child
        if nxt == "":
            node.setdefault("__append__", []).append(value)
            return
    node[parts[-1]] = value


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "__append__" in node and len(node) == 1:
        return list(node["__append__"])
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


# --- typed readers ------------------------------------------------------------------


def get_int(params: dict, key: str, default: int | None = None) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise invalid(
            f"Invalid integer: {raw}", param=key, code="parameter_invalid_integer"
        ) from None


def get_bool(params: dict, key: str, default: bool | None = None) -> bool | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    if raw in ("true", True):
        return True
    if raw in ("false", False):
        return False
    raise invalid(f"Invalid boolean: {raw}", param=key, code="parameter_invalid_boolean")


def get_decimal(params: dict, key: str) -> Decimal | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise invalid(f"Invalid decimal: {raw}", param=key) from None


def get_list(params: dict, key: str) -> list:
    raw = params.get(key)
    if raw is None or raw == "":
        return []
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict):
        return [raw[k] for k in sorted(raw)]
    return [raw]


def require(params: dict, key: str) -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise invalid(f"Missing required param: {key}.", param=key, code="parameter_missing")
    return value


def check_known(params: dict, allowed: set[str]) -> None:
    """Stripe rejects unknown parameters; so do we, to catch integration bugs early."""
    for key in params:
        if key not in allowed and key != "expand":
            raise invalid(f"Received unknown parameter: {key}", param=key, code="parameter_unknown")


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """`metadata=""` clears all keys; `metadata[k]=""` deletes one key."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise invalid("Invalid metadata", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged

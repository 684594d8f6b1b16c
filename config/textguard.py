"""One check for text we can't store: NUL (PostgreSQL refuses it in text and
jsonb) and lone UTF-16 surrogates (not encodable as UTF-8). Input carrying
either is refused before anything is reserved (`check`); text from the model
is scrubbed before we store it (`scrub`), so a model's odd answer can never
make the charging transaction fail."""

from __future__ import annotations

import re
from typing import Any

from config.errors import InvalidRequest

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The same characters as JSON escapes, in text that will be parsed as JSON later
# (a structured answer): \u0000, and a surrogate escape without its partner.
_ESCAPED = re.compile(
    r"\\u0000"
    r"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
# Integers we store are at most PostgreSQL's bigint; anything past it is no
# documented number of ours.
BIGINT_MAX = 2**63 - 1


def _problem(text: str) -> str | None:
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    return "contains a NUL character" if match.group() == "\x00" else "contains a lone surrogate"


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, problem) of the first text or number we can't store."""
    if isinstance(value, str):
        problem = _problem(value)
        return (path or "body", problem) if problem else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > BIGINT_MAX:
            return (path or "body", "is out of range")
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _problem(key):
                return (name, "has a name with a NUL character or a lone surrogate")
            found = find_unstorable(item, name)
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unstorable(item, f"{path}[{index}]" if path else f"[{index}]")
            if found:
                return found
    return None


def check(value: Any, path: str = "") -> None:
    """400 invalid_request naming the field, if `value` holds unstorable text."""
    found = find_unstorable(value, path)
    if found is None:
        return
    field, problem = found
    raise InvalidRequest(
        f"The field “{_printable(field)}” {problem}, which is not accepted.",
        details={_printable(field): [f"This field {problem}."]},
    )


def _printable(name: str) -> str:
    return _UNSTORABLE.sub(REPLACEMENT, name)[:200]


def scrub(text: str) -> str:
    """`text` with NUL and lone surrogates (raw or as JSON escapes) replaced by U+FFFD."""
    if not text:
        return text
    if _UNSTORABLE.search(text):
        text = _UNSTORABLE.sub(REPLACEMENT, text)
    if "\\u" in text or "\\U" in text:
        text = _ESCAPED.sub(r"\\ufffd", text)
    return text


_LONG_NUMBER = re.compile(rb"\d{19}")


def body_may_hide_unstorable(raw: bytes) -> bool:
    """Cheap pre-check of a JSON body: NUL and surrogates can only arrive as
    `\\u` escapes (raw NUL is invalid JSON, raw surrogates invalid UTF-8), and
    an integer past bigint needs 19 digits."""
    return b"\\u" in raw or _LONG_NUMBER.search(raw) is not None

"""The `Authorization: Bearer <token>` grammar, in one place.

It lives in `config` (the ground floor) because both the lean ASGI router
(`config.lean`, which picks a path before any app runs) and the meter's key
lookup (`usage.apikeys`) read the header; finding the key is usage's job."""

from __future__ import annotations


def parse_bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

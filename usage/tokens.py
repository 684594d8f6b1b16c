"""Token counting with OpenAI's own tokenizer (tiktoken), working offline.

tiktoken downloads its vocabulary at first use, and this machine (like many
production boxes) has no way out. The `quicktok-v1` package bundles the same
vocabularies in a compact binary form, so at first use we rebuild the official
`.tiktoken` file from it, check it against the sha256 tiktoken itself expects,
and put it where tiktoken looks (`TIKTOKEN_CACHE_DIR`). From then on plain
tiktoken loads it from disk, exactly as if it had downloaded it.

The encoding is built once per process and cached: counting is on the hot path
(every reservation estimates the input's tokens).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
import os
import struct
import threading
import uuid
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tiktoken

DEFAULT_ENCODING = "o200k_base"

# name -> (the URL tiktoken reads, the sha256 tiktoken checks, quicktok's file).
# Both copied from tiktoken_ext/openai_public.py.
_VOCABULARIES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "o200k.vocab",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "cl100k.vocab",
    ),
}

# Models that predate o200k. Everything else (gpt-4o, gpt-4.1, gpt-5, o-series,
# and unknown names) counts with o200k_base.
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "text-embedding-")
_CL100K_EXACT = {"gpt-4", "gpt-35-turbo"}

# OpenAI's published accounting for chat messages (openai-cookbook, "How to count
# tokens with tiktoken"): each message costs 3 tokens of framing, a name 1 more,
# and every reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

_lock = threading.Lock()


def _default_cache_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "var" / "tiktoken-cache"


def _cache_dir() -> Path:
    """Where tiktoken looks; set the variable before tiktoken reads it."""
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if not configured:
        configured = str(_default_cache_dir())
        os.environ["TIKTOKEN_CACHE_DIR"] = configured
    return Path(configured)


def _rebuild_tiktoken_file(quicktok_file: str) -> bytes:
    """quicktok's `<count u32> (<len u16> <bytes> <rank u32>)*` -> tiktoken's
    `base64(bytes) rank` lines, sorted by rank."""
    data = (importlib.resources.files("quicktok") / "data" / quicktok_file).read_bytes()
    ranks: dict[int, bytes] = {}
    offset = 4
    while offset < len(data):
        (length,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + length]
        (rank,) = struct.unpack_from("<I", data, offset + 2 + length)
        ranks[rank] = token
        offset += 2 + length + 4
    return b"".join(base64.b64encode(ranks[r]) + b" %d\n" % r for r in sorted(ranks))


def ensure_vocabulary(name: str = DEFAULT_ENCODING) -> Path:
    """Put the official vocabulary file for `name` into tiktoken's cache dir."""
    url, expected_sha256, quicktok_file = _VOCABULARIES[name]
    directory = _cache_dir()
    path = (
        directory / hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()
    )  # tiktoken's cache key
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == expected_sha256:
        return path
    contents = _rebuild_tiktoken_file(quicktok_file)
    actual = hashlib.sha256(contents).hexdigest()
    if actual != expected_sha256:
        raise RuntimeError(
            f"The {name} vocabulary rebuilt from quicktok does not match tiktoken's "
            f"expected sha256 ({actual} != {expected_sha256})."
        )
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(contents)
    tmp.replace(path)  # atomic: parallel processes never read half a file
    return path


@cache
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    with _lock:
        ensure_vocabulary(name)
        import tiktoken

        return tiktoken.get_encoding(name)


def encoding_name_for_model(model: str | None) -> str:
    if model:
        bare = model.split("/")[-1].lower()
        if bare in _CL100K_EXACT or bare.startswith(_CL100K_PREFIXES):
            return "cl100k_base"
    return DEFAULT_ENCODING


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in `text` as the model sees it. Special-token look-alikes typed by a
    user ("<|endoftext|>") are counted as ordinary text, never refused."""
    if not text:
        return 0
    return len(get_encoding(encoding_name_for_model(model)).encode_ordinary(text))


def _content_text(content: Any) -> str:
    """A message's content: a string or a list of parts (only text parts count)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
            parts.append(part.get("text") or "")
        elif isinstance(part, str):
            parts.append(part)
    return "".join(parts)


def count_message_tokens(messages: list[dict], model: str | None = None) -> int:
    """Prompt tokens for a Chat Completions `messages` list, framing included."""
    encoding = get_encoding(encoding_name_for_model(model))
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += len(encoding.encode_ordinary(message.get("role") or ""))
        text = _content_text(message.get("content"))
        if text:
            total += len(encoding.encode_ordinary(text))
        if message.get("name"):
            total += TOKENS_PER_NAME + len(encoding.encode_ordinary(message["name"]))
    return total


# Structured outputs: the provider turns `response_format`'s JSON schema into
# instructions the model reads, billed as prompt tokens. OpenAI doesn't publish
# the exact rendering; its cookbook says the schema definition and validation
# instructions add tokens to the prompt ("How to count tokens with tiktoken",
# section 8, openai/openai-cookbook PR #2108). Its rendering is more compact
# than JSON (no quotes or braces around keys), so the tokens of the indented
# JSON of the whole `response_format` plus a fixed allowance for the framing
# instructions over-estimates safely.
RESPONSE_FORMAT_FRAMING_TOKENS = 64


def count_response_format_tokens(response_format: dict | None, model: str | None = None) -> int:
    """A safe upper estimate of the prompt tokens `response_format` adds."""
    if not response_format:
        return 0
    rendered = json.dumps(response_format, indent=2, ensure_ascii=False)
    return count_tokens(rendered, model) + RESPONSE_FORMAT_FRAMING_TOKENS

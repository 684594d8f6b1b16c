"""What the fake model says: deterministic, cheap, and easy to assert on.

- Plain answers: the first `ANSWER_SENTENCES` sentences of the last user message
  (fault directives removed), one per line as "- ..." bullets when a message
  asks for a "bulleted list", "bullet points" or "bullets:"/"in bullets". An
  empty input answers "OK.".
- `response_format` `json_schema`: a JSON document valid for the schema. A field
  whose name appears in the user text as a `name: value` line takes that value
  (converted to the field's type); other fields get a plain default by type
  (string "example", number 0, integer 0, boolean false, date "2026-01-01").
- `response_format` `json_object`: `{"answer": <the plain answer>}`.
- Moderation: input containing `FLAGME` is flagged as "violence"; `FLAGME:<category>`
  (e.g. `FLAGME:harassment`) flags that category instead.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

ANSWER_SENTENCES = 3
FLAG_TRIGGER = "FLAGME"

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

DIRECTIVE = re.compile(r"\[\[fault:([a-z0-9_]+)(?::([0-9]+))?\]\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WANTS_BULLETS = re.compile(r"bulleted list|bullet points|bullet list|in bullets|bullets:", re.I)
_FLAG = re.compile(FLAG_TRIGGER + r"(?::([a-z/\-]+))?")


def message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text") or "" if isinstance(p, dict) else str(p)
            for p in content
            if not isinstance(p, dict) or p.get("type") in ("text", "input_text")
        )
    return str(content)


def last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def strip_directives(text: str) -> str:
    return DIRECTIVE.sub("", text).strip()


def plain_answer(messages: list[dict]) -> str:
    text = strip_directives(last_user_text(messages))
    if not text:
        return "OK."
    sentences = [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]
    chosen = sentences[:ANSWER_SENTENCES]
    wants_bullets = any(
        "bullet" in message_text(m.get("content")).lower() for m in messages if isinstance(m, dict)
    )
    if wants_bullets:
        return "\n".join(f"- {s}" for s in chosen)
    return " ".join(chosen)


# --- Structured outputs -------------------------------------------------------------


def _labelled_values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and value.strip():
            values[_normalize(name)] = value.strip()
    return values


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return _resolve(node, root) if isinstance(node, dict) else {}
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            return _resolve((non_null or options)[0], root)
    return schema


def _schema_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind:
        return kind
    if "properties" in schema:
        return "object"
    if "enum" in schema:
        return "enum"
    return "string"


def _convert(raw: str, schema: dict) -> Any:
    kind = _schema_type(schema)
    try:
        if kind == "integer":
            return int(Decimal(raw.replace(",", "")))
        if kind == "number":
            # A JSON number, exactly as a model would write it in its answer.
            return json.loads(str(Decimal(raw.replace(",", "").lstrip("$€£"))))
        if kind == "boolean":
            return raw.strip().lower() in ("yes", "true", "1", "y")
    except (ValueError, InvalidOperation):
        return _default(schema, {}, {})
    if "enum" in schema:
        return raw if raw in schema["enum"] else schema["enum"][0]
    return raw


def _default(schema: dict, root: dict, labelled: dict[str, str], name: str = "") -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = _schema_type(schema)
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _value_for(key, sub, root, labelled) for key, sub in properties.items()}
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        return [_default(items, root, labelled, name)]
    if kind == "integer":
        return 0
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if schema.get("format") == "date":
        return "2026-01-01"
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return "example"


def _value_for(name: str, schema: dict, root: dict, labelled: dict[str, str]) -> Any:
    resolved = _resolve(schema, root)
    raw = labelled.get(_normalize(name))
    if raw is not None and _schema_type(resolved) not in ("object", "array"):
        return _convert(raw, resolved)
    return _default(resolved, root, labelled, name)


def structured_answer(messages: list[dict], response_format: dict) -> str:
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") or {"type": "object"}
        labelled = _labelled_values(strip_directives(last_user_text(messages)))
        return json.dumps(_default(schema, schema, labelled), ensure_ascii=False)
    if kind == "json_object":
        return json.dumps({"answer": plain_answer(messages)}, ensure_ascii=False)
    return plain_answer(messages)


# --- Moderation ---------------------------------------------------------------------


def moderation_inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [message_text([p]) if isinstance(p, dict) else str(p) for p in raw]
    return [str(raw or "")]


def moderate(text: str) -> dict[str, Any]:
    hits = set()
    for match in _FLAG.finditer(text):
        category = match.group(1)
        hits.add(category if category in MODERATION_CATEGORIES else "violence")
    categories = {name: name in hits for name in MODERATION_CATEGORIES}
    return {
        "flagged": bool(hits),
        "categories": categories,
        "category_scores": {name: 0.99 if hit else 0.0001 for name, hit in categories.items()},
        "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
    }

"""Extract: named, typed fields out of free text, as validated JSON.

The answer is asked for with structured outputs (a strict JSON schema built
from the fields) and checked again here: exactly the requested keys, each of
its declared type or null. A malformed answer is asked for once more."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ai_features.registry import Feature, MalformedAnswer, register
from config.errors import InvalidRequest

FIELD_TYPES = ("string", "number", "boolean", "date")
MAX_FIELDS = 25
MAX_DESCRIPTION_CHARS = 500
FIELD_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ -]{0,63}$")

_JSON_TYPES = {"string": "string", "number": "number", "boolean": "boolean", "date": "string"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "string"
    description: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "description": self.description, "type": self.type}


@dataclass(frozen=True)
class ExtractInput:
    text: str
    fields: tuple[FieldSpec, ...]


def _clean_field(index: int, raw: Any, errors: dict[str, list[str]]) -> FieldSpec | None:
    where = f"fields[{index}]"
    if not isinstance(raw, Mapping):
        errors[where] = ["Each field must be an object with name, description and type."]
        return None
    name, kind = raw.get("name"), raw.get("type", "string")
    description = raw.get("description") or ""
    ok = True
    if not isinstance(name, str) or not name.strip():
        errors[f"{where}.name"] = ["A field needs a name."]
        ok = False
    elif not FIELD_NAME_RE.match(name.strip()):
        errors[f"{where}.name"] = [
            "Use 1-64 letters, digits, spaces, '-' or '_', starting with a letter."
        ]
        ok = False
    if kind not in FIELD_TYPES:
        errors[f"{where}.type"] = [f"Must be one of: {', '.join(FIELD_TYPES)}."]
        ok = False
    if not isinstance(description, str):
        errors[f"{where}.description"] = ["Must be a string."]
        ok = False
    elif len(description) > MAX_DESCRIPTION_CHARS:
        errors[f"{where}.description"] = [f"At most {MAX_DESCRIPTION_CHARS} characters."]
        ok = False
    if not ok:
        return None
    return FieldSpec(name=name.strip(), type=kind, description=description.strip())


def clean_fields(raw: Any) -> tuple[FieldSpec, ...]:
    if isinstance(raw, str):  # multipart forms send the list as JSON text
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidRequest(
                "“fields” must be a JSON list of {name, description, type}.",
                details={"fields": ["Not valid JSON."]},
            ) from None
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(
            "Name at least one field to extract.",
            details={"fields": ["A non-empty list of {name, description, type} is required."]},
        )
    if len(raw) > MAX_FIELDS:
        raise InvalidRequest(
            f"At most {MAX_FIELDS} fields can be extracted at once; you sent {len(raw)}.",
            details={"fields": [f"At most {MAX_FIELDS} fields."]},
        )
    errors: dict[str, list[str]] = {}
    fields = [_clean_field(i, item, errors) for i, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for i, spec in enumerate(fields):
        if spec is None:
            continue
        key = spec.name.lower()
        if key in seen:
            errors[f"fields[{i}].name"] = [f"Duplicate of fields[{seen[key]}] (“{spec.name}”)."]
        seen.setdefault(key, i)
    if errors:
        raise InvalidRequest("Some fields are not valid.", details=errors)
    return tuple(f for f in fields if f is not None)


def json_schema(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for spec in fields:
        hint = {"date": "A calendar date as YYYY-MM-DD."}.get(spec.type, "")
        description = " ".join(p for p in (spec.description, hint) if p) or spec.name
        properties[spec.name] = {
            "type": [_JSON_TYPES[spec.type], "null"],
            "description": description,
        }
        if spec.type == "date":
            properties[spec.name]["format"] = "date"
    return {
        "type": "object",
        "properties": properties,
        "required": [spec.name for spec in fields],
        "additionalProperties": False,
    }


def _coerce(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    kind = spec.type
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise MalformedAnswer(f"“{spec.name}” should be a {kind}, got {value!r:.40}")


@register
class Extract(Feature):
    slug = "extract"
    name = "Extract"
    description = "Pull named, typed fields out of text or a document as a table or JSON."
    order = 20
    page_url_name = "ai_features:extract"
    max_output_tokens = 2048
    answer_retries = 1
    system_prompt = (
        "You extract structured data from the user's text. Answer only with a JSON object "
        "that matches the given schema exactly. Use null when the text does not state a "
        "value. Numbers are plain numbers without units or thousands separators; dates are "
        "YYYY-MM-DD; booleans are true or false. Do not invent values."
    )

    def validate(self, data: Mapping[str, Any]) -> ExtractInput:
        fields = clean_fields(data.get("fields"))
        return ExtractInput(text=self.clean_text(data), fields=fields)

    def build_messages(self, value: ExtractInput) -> list[dict[str, str]]:
        lines = [
            f"- {f.name} ({f.type}){': ' + f.description if f.description else ''}"
            for f in value.fields
        ]
        prompt = "Fields to extract:\n" + "\n".join(lines) + "\n\nText:\n<<<\n" + value.text
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": prompt + "\n>>>"},
        ]

    def response_format(self, value: ExtractInput) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": "extraction",
                "strict": True,
                "schema": json_schema(value.fields),
            },
        }

    def parse(self, text: str, value: ExtractInput) -> dict[str, Any]:
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise MalformedAnswer(f"not JSON: {exc}") from None
        if not isinstance(answer, dict):
            raise MalformedAnswer("not a JSON object")
        expected = [f.name for f in value.fields]
        if set(answer) != set(expected):
            raise MalformedAnswer(f"keys {sorted(answer)} instead of {sorted(expected)}")
        return {spec.name: _coerce(spec, answer[spec.name]) for spec in value.fields}

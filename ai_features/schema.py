"""OpenAPI for the async feature endpoints (plain Django views, which
drf-spectacular can't see): added to the generated schema by a hook."""

from __future__ import annotations

USAGE = {
    "type": "object",
    "properties": {
        name: {"type": "integer"}
        for name in ("input_tokens", "cached_input_tokens", "output_tokens", "total_tokens")
    },
}
ERROR = {"description": "Error in the API's format: {error: {code, message, details}}"}
SUMMARY = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "summary": {"type": "string"},
        "model": {"type": "string"},
        "usage": USAGE,
    },
}
ERROR_CODES = ("400", "401", "402", "403", "413", "415", "422", "429", "502", "503", "504")
HEADERS = {"X-Request-Id": {"schema": {"type": "string"}}}


def _summaries() -> dict:
    return {
        "post": {
            "operationId": "summaries_create",
            "tags": ["features"],
            "summary": "Summarize text or an uploaded document (metered)",
            "description": "Text up to TOLLGATE_MAX_INPUT_CHARS characters (200,000 by "
            "default); documents (.txt, .md, .pdf, .docx) up to 10 MB. Send "
            "`Idempotency-Key` to make retries safe.",
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
            ],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["text"],
                            "properties": {
                                "text": {"type": "string"},
                                "length": {"enum": ["short", "medium", "long"]},
                                "format": {"enum": ["paragraph", "bullets"]},
                            },
                        }
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "document": {"type": "string", "format": "binary"},
                                "length": {"enum": ["short", "medium", "long"]},
                                "format": {"enum": ["paragraph", "bullets"]},
                            },
                        }
                    },
                }
            },
            "responses": {
                "201": {
                    "description": "The summary",
                    "headers": HEADERS,
                    "content": {"application/json": {"schema": SUMMARY}},
                },
                **{code: ERROR for code in ERROR_CODES},
            },
            "security": [{"ApiKey": []}, {"cookieAuth": []}],
        }
    }


def _summary_detail() -> dict:
    return {
        "get": {
            "operationId": "summaries_retrieve",
            "tags": ["features"],
            "summary": "A summary of your workspace",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The summary",
                    "content": {"application/json": {"schema": SUMMARY}},
                },
                "404": ERROR,
            },
            "security": [{"ApiKey": []}, {"cookieAuth": []}],
        }
    }


def add_feature_paths(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    paths = result.setdefault("paths", {})
    paths["/api/v1/summaries"] = _summaries()
    paths["/api/v1/summaries/{id}"] = _summary_detail()
    return result

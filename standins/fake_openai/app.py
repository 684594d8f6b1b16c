"""The fake OpenAI-compatible server (Starlette, served by uvicorn).

Endpoints speak OpenAI's wire format closely enough for the official SDK:

- `POST /v1/chat/completions` — plain or streamed (SSE); with
  `stream_options.include_usage` the stream ends with a usage chunk
  (`choices: []`). Usage is counted with usage.tokens (o200k_base, OpenAI's
  message framing). Cached tokens follow OpenAI's rule of thumb: prompts of at
  least 1024 tokens are cached in 128-token steps, so a request whose first
  1024 + 128·k prompt tokens were already seen reports that many
  `prompt_tokens_details.cached_tokens`.
- `POST /v1/moderations`, `GET /v1/models`, `GET /v1/models/{id}`.
- Every `/v1/` call needs `Authorization: Bearer <any non-empty key>`.

Faults, two ways (see `Fault`):
- queued: `POST /_control/faults {"faults": [{"kind": "429", "times": 2}, ...]}`
  — each entry is consumed by the next matching call (`"endpoint"`: "chat" by
  default, "moderations" or "any");
- inline: a directive in the last user message, applied to every chat call
  carrying it: `[[fault:429]]`, `[[fault:500]]`, `[[fault:503]]`,
  `[[fault:401]]`, `[[fault:context_length]]`, `[[fault:delay:1500]]` (ms),
  `[[fault:cut:3]]` (drop the connection after 3 stream chunks; a plain call is
  cut mid-body), `[[fault:no_usage]]` (no usage chunk / no usage field),
  `[[fault:pace:50]]` (a streamed answer sends one chunk every 50 ms),
  `[[fault:malformed:2]]` (a chunk that is not JSON after 2 chunks),
  `[[fault:stall:2]]` (after 2 chunks the stream goes silent, connection open),
  `[[fault:truncate:2]]` (after 2 chunks the response ends cleanly: no finish
  reason, no usage, no [DONE]), `[[fault:nul]]` (the answer carries a NUL and a
  lone surrogate, as JSON escapes inside a structured answer).
Every chat call that was answered (its body, or a stream's first content chunk)
is appended to `State.served` as {"request_id" (x-request-id), "completion_id",
"stream", "fault"}: the fault suite compares it with the ledger.
Control: `POST /_control/reset`, `POST /_control/config {"latency_ms": N}`,
`GET /_control/last_request` (headers with the bearer masked, plus its sha256),
`GET /_control/stats` (calls per endpoint, chat calls in flight and their peak
since the last reset), `GET /_control/served` (the served-call log below).
Organization Usage/Costs APIs (admin key) from what was served, with their own
fault switch: see `org_billing.py`; queued faults with `"endpoint": "org"` hit
the usage endpoint (e.g. a 500 to exercise retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from standins.fake_openai import answers
from standins.fake_openai.org_billing import DAY, PROJECT_ID, OrgBilling, page_of
from usage import tokens

MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "gpt-5-mini",
    "omni-moderation-latest",
)
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 128
_SEEN_PREFIXES_MAX = 200_000


@dataclass
class Fault:
    """kind: an HTTP status ("429", "500", "503", "401", ...), "context_length",
    "delay" (arg = ms), "cut" (arg = chunks before the drop), "no_usage"."""

    kind: str
    arg: int | None = None
    endpoint: str = "chat"  # chat | moderations | any

    @classmethod
    def from_json(cls, data: dict) -> Fault:
        kind = str(data.get("kind", "")).lower()
        arg = data.get("ms", data.get("after_chunks", data.get("retry_after_ms", data.get("arg"))))
        return cls(
            kind=kind, arg=None if arg is None else int(arg), endpoint=data.get("endpoint", "chat")
        )


@dataclass
class State:
    latency_ms: int = 0
    default_latency_ms: int = 0
    faults: deque[Fault] = field(default_factory=deque)
    last_request: dict[str, Any] | None = None
    seen_prefixes: set[bytes] = field(default_factory=set)
    calls: Counter = field(default_factory=Counter)
    in_flight: int = 0  # chat calls being answered right now
    peak_in_flight: int = 0
    # When the first and the last chat call since the reset arrived
    # (time.monotonic, the machine's clock: benchmarks compare it with theirs).
    first_chat_at: float | None = None
    last_chat_at: float | None = None
    org: OrgBilling = field(default_factory=OrgBilling)  # what was served, for the usage API
    served: list[dict] = field(default_factory=list)  # chat calls answered (see module doc)

    def reset(self) -> None:
        self.peak_in_flight = self.in_flight
        self.first_chat_at = self.last_chat_at = None
        self.latency_ms = self.default_latency_ms
        self.faults.clear()
        self.last_request = None
        self.seen_prefixes.clear()
        self.calls.clear()
        self.org.reset()
        self.served.clear()

    def take_fault(self, endpoint: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.endpoint in (endpoint, "any"):
                self.faults.remove(fault)
                return fault
        return None

    def enqueue(self, fault: Fault, times: int = 1) -> None:
        self.faults.extend(Fault(fault.kind, fault.arg, fault.endpoint) for _ in range(times))


# --- Helpers ---------------------------------------------------------------------------


def openai_error(status: int, message: str, *, kind: str, code: str | None = None, headers=None):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _record(state: State, request: Request, body: Any, key: str) -> None:
    headers = dict(request.headers)
    if "authorization" in headers:
        headers["authorization"] = "Bearer ***"
    state.last_request = {
        "method": request.method,
        "path": request.url.path,
        "headers": headers,
        "authorization_sha256": hashlib.sha256(key.encode()).hexdigest() if key else None,
        "body": body,
    }


def _fault_response(fault: Fault, key: str) -> Response | None:
    if fault.kind == "context_length":
        return openai_error(
            400,
            "This model's maximum context length is 128000 tokens. Please reduce the length.",
            kind="invalid_request_error",
            code="context_length_exceeded",
        )
    if not fault.kind.isdigit():
        return None
    status = int(fault.kind)
    if status == 429:
        wait_ms = 10 if fault.arg is None else fault.arg
        headers = {"retry-after-ms": str(wait_ms), "retry-after": str(max(1, -(-wait_ms // 1000)))}
        return openai_error(
            429,
            "Rate limit reached for requests. Please try again later.",
            kind="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if status == 401:
        # Like OpenAI, quote (part of) the key back: the client must never repeat it.
        return openai_error(
            401,
            f"Incorrect API key provided: {key}. You can find your API key in your settings.",
            kind="invalid_request_error",
            code="invalid_api_key",
        )
    kind = "server_error" if status >= 500 else "invalid_request_error"
    # A short retry-after-ms keeps the SDK's backoff (and the tests) fast.
    headers = {"retry-after-ms": str(10 if fault.arg is None else fault.arg)}
    return openai_error(status, f"The server had an error ({status}).", kind=kind, headers=headers)


def _directive_faults(messages: list[dict]) -> list[Fault]:
    text = answers.last_user_text(messages)
    if "[[fault:" not in text:
        return []
    return [
        Fault(kind.lower(), int(arg) if arg else None)
        for kind, arg in answers.DIRECTIVE.findall(text)
    ]


def _prompt_usage(state: State, messages: list[dict]) -> tuple[int, int]:
    """(prompt tokens with OpenAI's framing, cached tokens by the prefix rule)."""
    encoding = tokens.get_encoding()
    prompt = tokens.REPLY_PRIMING_TOKENS
    ids: list[int] = []
    for message in messages:
        role_ids = encoding.encode_ordinary(str(message.get("role") or ""))
        content_ids = encoding.encode_ordinary(answers.message_text(message.get("content")))
        prompt += tokens.TOKENS_PER_MESSAGE + len(role_ids) + len(content_ids)
        if message.get("name"):
            prompt += tokens.TOKENS_PER_NAME + len(encoding.encode_ordinary(message["name"]))
        ids += role_ids
        ids += content_ids
    if len(ids) < CACHE_MIN_TOKENS:
        return prompt, 0
    raw = array("I", ids).tobytes()
    digest = hashlib.blake2b(digest_size=16)
    cached, start = 0, 0
    boundaries = range(CACHE_MIN_TOKENS, len(ids) + 1, CACHE_STEP_TOKENS)
    if len(state.seen_prefixes) > _SEEN_PREFIXES_MAX:
        state.seen_prefixes.clear()
    for boundary in boundaries:
        digest.update(raw[start * 4 : boundary * 4])
        start = boundary
        key = digest.copy().digest()
        if key in state.seen_prefixes:
            cached = boundary
        else:
            state.seen_prefixes.add(key)
    return prompt, cached


def _schema_tokens(response_format: Any) -> int:
    """Like OpenAI, a structured answer's schema is billed as prompt tokens: here
    its compact JSON plus a little framing (the real rendering is unpublished)."""
    if not isinstance(response_format, dict):
        return 0
    compact = json.dumps(response_format, separators=(",", ":"), ensure_ascii=False)
    return len(tokens.get_encoding().encode_ordinary(compact)) + 12


def _usage(prompt: int, cached: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _answer(body: dict, messages: list[dict]) -> tuple[str, int, str]:
    """(text, completion tokens, finish_reason), truncated to the token limit."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        text = answers.structured_answer(messages, response_format)
    else:
        text = answers.plain_answer(messages)
    encoding = tokens.get_encoding()
    ids = encoding.encode_ordinary(text)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(ids):
        return encoding.decode(ids[:limit]), limit, "length"
    return text, len(ids), "stop"


def _with_unstorable(text: str, *, structured: bool) -> str:
    """The answer with a NUL and a lone surrogate in it (a model can echo them)."""
    if structured:  # inside the first JSON string value, as escapes
        at = text.find('": "')
        if at >= 0:
            at += 4
            return text[:at] + "\\u0000\\ud800" + text[at:]
        return text
    middle = len(text) // 2
    return text[:middle] + "\x00\ud800" + text[middle:]


class _CutBody:
    """Starts a response and drops the connection halfway through."""

    def __init__(self, status: int, headers: dict[str, str], parts: list[bytes]) -> None:
        self.status, self.headers, self.parts = status, headers, parts

    async def __call__(self, scope, receive, send) -> None:
        raw_headers = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw_headers})
        for part in self.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        # Returning without the final body message makes uvicorn close the socket.


class _SSE:
    """A streamed chat completion, chunk by chunk, as OpenAI sends it."""

    def __init__(
        self,
        chunks: list[bytes],
        headers: dict[str, str],
        cut_after: int | None,
        pace_ms: int = 0,
        broken: Fault | None = None,
        on_answer=None,
    ):
        self.chunks, self.headers, self.cut_after = chunks, headers, cut_after
        self.on_answer = on_answer  # called once, when the first content chunk goes out
        self.pace_ms = pace_ms  # pause between chunks, like a model writing
        self.broken = broken  # malformed / stall / truncate after `arg` chunks

    async def _break(self, receive, send) -> None:
        kind = self.broken.kind if self.broken else ""
        if kind == "malformed":
            await send(
                {"type": "http.response.body", "body": b"data: {not json\n\n", "more_body": True}
            )
            await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif kind == "stall":
            # Silent, connection open, until the client gives up (bounded, so a
            # server shutting down never waits on it for long).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    while (await receive())["type"] != "http.disconnect":
                        pass
        else:  # truncate: a clean end without finish reason, usage or [DONE]
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope, receive, send) -> None:
        raw_headers = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        for index, chunk in enumerate(self.chunks):
            if self.cut_after is not None and index >= self.cut_after:
                return  # connection dropped mid-stream
            if self.broken is not None and index >= (self.broken.arg or 0):
                return await self._break(receive, send)
            if index == 1 and self.on_answer is not None:
                self.on_answer()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if self.pace_ms:
                await asyncio.sleep(self.pace_ms / 1000)
            elif index % 8 == 7:
                await asyncio.sleep(0)  # let other streams through
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _sse_chunks(
    *,
    completion_id: str,
    model: str,
    text: str,
    finish_reason: str,
    usage: dict | None,
    ascii_only: bool = False,
) -> list[bytes]:
    created = int(time.time())

    include = usage is not None

    def chunk(delta: dict, finish: str | None = None, *, final: bool = False) -> bytes:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": []
            if final
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include:  # like OpenAI: "usage": null on every chunk but the last
            payload["usage"] = usage if final else None
        return b"data: " + json.dumps(payload, ensure_ascii=ascii_only).encode() + b"\n\n"

    words = [w + " " for w in text.split(" ")]
    words[-1] = words[-1][:-1]
    parts = [chunk({"role": "assistant", "content": "", "refusal": None})]
    parts += [chunk({"content": w}) for w in words if w]
    parts.append(chunk({}, finish_reason))
    if include:
        parts.append(chunk({}, final=True))
    parts.append(b"data: [DONE]\n\n")
    return parts


# --- Endpoints ---------------------------------------------------------------------------


def create_app(*, latency_ms: int = 0) -> Starlette:
    state = State(latency_ms=latency_ms, default_latency_ms=latency_ms)

    async def authorized(request: Request) -> tuple[str, Response | None]:
        key = _bearer(request)
        if not key:
            return key, openai_error(
                401,
                "You didn't provide an API key. Provide it in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                kind="invalid_request_error",
            )
        return key, None

    async def read_json(request: Request) -> tuple[Any, Response | None]:
        try:
            return json.loads(await request.body()), None
        except ValueError:
            return None, openai_error(
                400,
                "We could not parse the JSON body of your request.",
                kind="invalid_request_error",
            )

    async def chat_completions(request: Request) -> Response:
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        state.last_chat_at = time.monotonic()
        if state.first_chat_at is None:
            state.first_chat_at = state.last_chat_at
        try:
            return await answer_chat(request)
        finally:
            state.in_flight -= 1

    async def answer_chat(request: Request) -> Response:
        key, denied = await authorized(request)
        if denied:
            return denied
        body, bad = await read_json(request)
        if bad:
            return bad
        _record(state, request, body, key)
        state.calls["chat"] += 1
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages or not body.get("model"):
            return openai_error(
                400,
                "'model' and a non-empty 'messages' are required.",
                kind="invalid_request_error",
            )
        faults = _directive_faults(messages)
        queued = state.take_fault("chat")
        if queued:
            faults.insert(0, queued)
        delay = state.latency_ms + sum(f.arg or 0 for f in faults if f.kind == "delay")
        if delay:
            await asyncio.sleep(delay / 1000)
        for fault in faults:
            failure = _fault_response(fault, key)
            if failure is not None:
                failure.headers["x-request-id"] = _request_id()
                return failure
        kinds = {f.kind: f for f in faults}
        model = str(body["model"])
        text, completion_tokens, finish_reason = _answer(body, messages)
        if "nul" in kinds:
            text = _with_unstorable(text, structured=isinstance(body.get("response_format"), dict))
        prompt_tokens, cached = _prompt_usage(state, messages)
        prompt_tokens += _schema_tokens(body.get("response_format"))
        usage = _usage(prompt_tokens, cached, completion_tokens)
        # Served = billed, whatever reaches the client (usage left out, a cut stream).
        state.org.record(at=time.time(), model=model, key=key, usage=usage)
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        headers = {"x-request-id": _request_id(), "openai-processing-ms": str(delay)}
        served = {
            "request_id": headers["x-request-id"],
            "completion_id": completion_id,
            "stream": bool(body.get("stream")),
            "fault": ",".join(sorted(kinds)),
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = _sse_chunks(
                completion_id=completion_id,
                model=model,
                text=text,
                finish_reason=finish_reason,
                usage=usage if include_usage and "no_usage" not in kinds else None,
                ascii_only="nul" in kinds,
            )
            cut = kinds.get("cut")
            headers["content-type"] = "text/event-stream; charset=utf-8"
            headers["cache-control"] = "no-cache"
            pace = kinds.get("pace")  # features helper: [[fault:pace:MS]] paces the chunks
            broken = next(
                (kinds[k] for k in ("malformed", "stall", "truncate") if k in kinds), None
            )
            return _SSE(
                chunks,
                headers,
                None if cut is None else (cut.arg or 0),
                (pace.arg or 0) if pace else 0,
                broken,
                on_answer=lambda: state.served.append(served),
            )
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if "no_usage" not in kinds:
            payload["usage"] = usage
        encoded = json.dumps(payload, ensure_ascii="nul" in kinds).encode()
        state.served.append(served)
        if "cut" in kinds:
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(encoded))
            return _CutBody(200, headers, [encoded[: len(encoded) // 2]])
        return Response(encoded, media_type="application/json", headers=headers)

    async def moderations(request: Request) -> Response:
        key, denied = await authorized(request)
        if denied:
            return denied
        body, bad = await read_json(request)
        if bad:
            return bad
        _record(state, request, body, key)
        state.calls["moderations"] += 1
        fault = state.take_fault("moderations")
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep((fault.arg or 0) / 1000)
            else:
                failure = _fault_response(fault, key)
                if failure is not None:
                    return failure
        inputs = answers.moderation_inputs((body or {}).get("input"))
        return JSONResponse(
            {
                "id": "modr-" + uuid.uuid4().hex[:24],
                "model": (body or {}).get("model") or "omni-moderation-latest",
                "results": [answers.moderate(text) for text in inputs],
            },
            headers={"x-request-id": _request_id()},
        )

    def model_object(name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "tollgate-fake",
        }

    async def list_models(request: Request) -> Response:
        _, denied = await authorized(request)
        if denied:
            return denied
        return JSONResponse({"object": "list", "data": [model_object(m) for m in MODELS]})

    async def get_model(request: Request) -> Response:
        _, denied = await authorized(request)
        if denied:
            return denied
        name = request.path_params["model"]
        if name not in MODELS:
            return openai_error(
                404,
                f"The model '{name}' does not exist.",
                kind="invalid_request_error",
                code="model_not_found",
            )
        return JSONResponse(model_object(name))

    def org_query(request: Request) -> tuple[dict, Response | None]:
        params = request.query_params
        try:
            start = int(params["start_time"])
            end = int(params.get("end_time") or start + 7 * DAY)
            limit = int(params.get("limit") or 7)
        except (KeyError, ValueError):
            return {}, openai_error(
                400, "start_time (unix seconds) is required.", kind="invalid_request_error"
            )

        def many(name: str) -> list[str]:
            return params.getlist(name) + params.getlist(f"{name}[]")

        models, keys, projects = many("models"), many("api_key_ids"), many("project_ids")

        def filters(row) -> bool:
            return (
                (not models or row.model in models)
                and (not keys or row.api_key_id in keys)
                and (not projects or PROJECT_ID in projects)
            )

        return {
            "start": start,
            "end": end,
            "limit": max(1, limit),
            "page": params.get("page"),
            "width": {"1d": DAY, "1h": 3600, "1m": 60}.get(params.get("bucket_width", "1d"), DAY),
            "group_by": many("group_by"),
            "filters": filters,
        }, None

    async def org_usage_completions(request: Request) -> Response:
        _, denied = await authorized(request)
        if denied:
            return denied
        query, bad = org_query(request)
        if bad:
            return bad
        state.calls["org_usage"] += 1
        fault = state.take_fault("org")
        if fault is not None and (failure := _fault_response(fault, "")) is not None:
            return failure
        buckets = state.org.usage_buckets(
            start=query["start"],
            end=query["end"],
            width=query["width"],
            group_by=query["group_by"],
            filters=query["filters"],
        )
        return JSONResponse(page_of(buckets, limit=query["limit"], page=query["page"]))

    async def org_costs(request: Request) -> Response:
        _, denied = await authorized(request)
        if denied:
            return denied
        query, bad = org_query(request)
        if bad:
            return bad
        state.calls["org_costs"] += 1
        buckets = state.org.cost_buckets(
            start=query["start"],
            end=query["end"],
            group_by=query["group_by"],
            filters=query["filters"],
        )
        return JSONResponse(page_of(buckets, limit=query["limit"], page=query["page"]))

    async def control_org_usage(request: Request) -> Response:
        body, bad = await read_json(request)
        if bad:
            return bad
        state.org.faults = dict(body or {})
        return JSONResponse({"faults": state.org.faults})

    async def control_prices(request: Request) -> Response:
        body, bad = await read_json(request)
        if bad:
            return bad
        state.org.prices.update({m: tuple(map(str, p)) for m, p in (body or {}).items()})
        return JSONResponse({"prices": state.org.prices})

    async def control_faults(request: Request) -> Response:
        body, bad = await read_json(request)
        if bad:
            return bad
        for item in (body or {}).get("faults", []):
            state.enqueue(Fault.from_json(item), int(item.get("times", 1)))
        return JSONResponse({"queued": len(state.faults)})

    async def control_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def control_config(request: Request) -> Response:
        body, bad = await read_json(request)
        if bad:
            return bad
        if "latency_ms" in (body or {}):
            state.latency_ms = int(body["latency_ms"])
        return JSONResponse({"latency_ms": state.latency_ms})

    async def control_last_request(request: Request) -> Response:
        return JSONResponse(state.last_request)

    async def control_stats(request: Request) -> Response:
        return JSONResponse(
            {
                "calls": dict(state.calls),
                "queued_faults": len(state.faults),
                "in_flight": state.in_flight,
                "peak_in_flight": state.peak_in_flight,
                "first_chat_at": state.first_chat_at,
                "last_chat_at": state.last_chat_at,
            }
        )

    async def control_served(request: Request) -> Response:
        return JSONResponse({"served": state.served})

    async def not_found(request: Request, exc: Exception) -> Response:
        return openai_error(404, f"Unknown path {request.url.path}", kind="invalid_request_error")

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/moderations", moderations, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/v1/organization/usage/completions", org_usage_completions, methods=["GET"]),
            Route("/v1/organization/costs", org_costs, methods=["GET"]),
            Route("/_control/org_usage", control_org_usage, methods=["POST"]),
            Route("/_control/prices", control_prices, methods=["POST"]),
            Route("/_control/faults", control_faults, methods=["POST"]),
            Route("/_control/reset", control_reset, methods=["POST"]),
            Route("/_control/config", control_config, methods=["POST"]),
            Route("/_control/last_request", control_last_request, methods=["GET"]),
            Route("/_control/stats", control_stats, methods=["GET"]),
            Route("/_control/served", control_served, methods=["GET"]),
        ],
        exception_handlers={404: not_found},
    )
    app.state.fake = state
    tokens.get_encoding()  # load the vocabulary now, not on the first request
    return app

"""The one door to the model provider: the official `openai` SDK, async, with the
operator's org key, configured only from settings.

    up = get_upstream()
    result = await up.chat(model=..., messages=[...], max_output_tokens=300,
                           safety_identifier=safety_identifier_for(user.pk))
    async for chunk in up.chat_stream(...):   # UpstreamChunk(delta, usage, ...)
    verdict = await up.moderate(text=...)

Only the meter (usage/metering.py) calls this module; features go through the
meter.

Errors come out as `config.errors` classes, after the SDK's bounded retries:
provider 429 / 503 / unreachable -> `UpstreamUnavailable` (503), timeouts ->
`UpstreamTimeout` (504), any other provider failure -> `UpstreamError` (502), a
prompt longer than the model's context -> `InvalidRequest` (400). A stream that
breaks after it started raises `UpstreamStreamInterrupted` (an `UpstreamError`)
carrying what was received, so the meter can charge what was consumed.

Secrets: the key lives only inside the SDK client. Our error messages are our
own sentences (the provider's text can quote the key), exceptions are raised
`from None` so no provider message rides along in a traceback, and whatever we
log passes through `redact()`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
import openai
from django.conf import settings
from httpx2 import USE_CLIENT_DEFAULT
from openai._models import FinalRequestOptions
from openai._utils import is_given
from openai._utils._json import openapi_dumps
from openai._vendor.httpx_aiohttp import AiohttpTransport

from config.errors import (
    ApiError,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

logger = logging.getLogger(__name__)


# --- Results ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens one call consumed, as the provider reported them.

    `input_tokens` counts the whole prompt, cached part included (OpenAI's
    `prompt_tokens`); `cached_input_tokens` is the part of it served from the
    provider's prompt cache (billed at the cached rate). So
    `total_tokens = input_tokens + output_tokens`."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_payload(cls, usage: Any) -> TokenUsage | None:
        """From the JSON `usage` object of a Chat Completions response."""
        if not isinstance(usage, dict):
            return None
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            cached_input_tokens=int(details.get("cached_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )

    @classmethod
    def from_openai(cls, usage: Any) -> TokenUsage | None:
        if usage is None:
            return None
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        return cls(
            input_tokens=usage.prompt_tokens or 0,
            cached_input_tokens=cached,
            output_tokens=usage.completion_tokens or 0,
        )


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    text: str
    usage: TokenUsage | None
    upstream_request_id: str | None
    model: str
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class UpstreamChunk:
    """One piece of a streamed answer. Text arrives in `delta`; the provider's
    final chunk carries `usage` (with `stream_options.include_usage`)."""

    delta: str = ""
    usage: TokenUsage | None = None
    upstream_request_id: str | None = None
    finish_reason: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class ModerationResult:
    flagged: bool
    categories: dict[str, bool] = field(default_factory=dict)
    model: str = ""

    @property
    def flagged_categories(self) -> list[str]:
        return sorted(name for name, hit in self.categories.items() if hit)


MODERATION_MISSING = (
    "The content pre-screen (moderation) is on, but the model provider has no "
    "moderation endpoint (/v1/moderations), so the call was refused. An operator can "
    "turn the pre-screen off with TOLLGATE_MODERATION=off or in admin "
    "(Usage > Moderation settings)."
)


class _ModerationMissing(Exception):
    pass


class UpstreamStreamInterrupted(UpstreamError):
    """The stream broke after it had started: tokens may have been consumed."""

    default_message = "The model provider's answer broke off before it was complete."

    def __init__(
        self,
        message: str | None = None,
        *,
        text_so_far: str = "",
        chunks_received: int = 0,
        upstream_request_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.text_so_far = text_so_far
        self.chunks_received = chunks_received
        self.upstream_request_id = upstream_request_id


# --- Secrets ------------------------------------------------------------------------

_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")


def redact(text: str) -> str:
    """`text` without the configured key or anything shaped like an API key."""
    key = getattr(settings, "OPENAI_API_KEY", "") or ""
    if key:
        text = text.replace(key, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


def safety_identifier_for(user_id: object) -> str:
    """A stable per-person id for the provider's abuse detection that tells it
    nothing about the person: an HMAC of our user id with the site's secret."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"tollgate-user:{user_id}".encode(), hashlib.sha256
    )
    return "tg_" + digest.hexdigest()[:48]


# --- The client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Config:
    api_key: str
    base_url: str | None
    organization: str | None
    project: str | None
    timeout: float
    max_retries: int
    max_connections: int
    max_tokens_param: str
    default_model: str
    moderation_model: str

    @classmethod
    def from_settings(cls) -> _Config:
        return cls(
            api_key=settings.OPENAI_API_KEY or "",
            base_url=settings.OPENAI_BASE_URL or None,
            organization=settings.OPENAI_ORG_ID or None,
            project=settings.OPENAI_PROJECT_ID or None,
            timeout=float(settings.OPENAI_TIMEOUT_SECONDS),
            max_retries=int(settings.OPENAI_MAX_RETRIES),
            max_connections=int(settings.OPENAI_MAX_CONNECTIONS),
            max_tokens_param=settings.OPENAI_MAX_TOKENS_PARAM,
            default_model=settings.OPENAI_DEFAULT_MODEL,
            moderation_model=settings.OPENAI_MODERATION_MODEL,
        )

    def __repr__(self) -> str:  # never print the key, even in a debugger dump
        return f"_Config(base_url={self.base_url!r}, organization={self.organization!r})"


class _AiohttpTransport(AiohttpTransport):
    """The SDK's aiohttp transport, with one correction: it reports every
    aiohttp connection error (refused, reset, server gone) as a connect
    *timeout*, which would make an unreachable provider a 504 instead of a 503.
    Only real timeouts stay timeouts here."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await super().handle_async_request(request)
        except httpx2.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(
                cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError
            ):
                raise httpx2.ConnectError(str(cause), request=request) from cause
            raise


class _DirectHttpClient(openai.DefaultAioHttpClient):
    """The SDK's aiohttp-backed http client, handing each request straight to
    its transport. httpx's `send` runs an auth flow, redirect handling, event
    hooks and cookie extraction around it, none of which applies here: the
    SDK sets its own `Authorization` header, the API sets no cookies and
    doesn't redirect (so redirects aren't followed: a provider URL that
    answers 3xx is misconfigured, and the call fails with a 502 saying so).
    Those layers were ~3 % of a worker's CPU under load (py-spy). A request
    that asks for them (an auth, redirects) goes the full way."""

    def __init__(self, *, transport: httpx2.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._direct_transport = transport

    async def send(
        self,
        request: httpx2.Request,
        *,
        stream: bool = False,
        auth: Any = USE_CLIENT_DEFAULT,
        follow_redirects: Any = USE_CLIENT_DEFAULT,
    ) -> httpx2.Response:
        redirects = (
            self.follow_redirects if follow_redirects is USE_CLIENT_DEFAULT else follow_redirects
        )
        plain = auth is USE_CLIENT_DEFAULT and self.auth is None and not redirects
        if not plain or any(self.event_hooks.values()) or "timeout" not in request.extensions:
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        response = await self._direct_transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response


class _SdkClient(openai.AsyncOpenAI):
    """The SDK's client, remembering what it builds the same way every time.

    - The URL for each path: it parsed and merged the same two URLs on every
      request (~2% of a worker's CPU under load, py-spy). httpx URLs are
      immutable, so one can be shared.
    - The request for a plain JSON POST (`_build_request`): the SDK merged
      its headers (key, organization, project, platform, retry count, read
      timeout), the URL and the timeouts anew for every call, ~0.2 ms of CPU
      (a quarter of its cost per call: `Upstream._post_json` timed against
      the fake upstream, 1,000 calls). The first
      request of a path and attempt number is built by the SDK itself and
      kept as a template; later ones are that request with their own body.
      Everything else — options, auth hooks, retries, errors, the response —
      stays the SDK's own. Requests with anything of their own (headers,
      query, files, a timeout) and clients whose auth can change per request
      (a key provider, a workload identity, a provider) are built as usual."""

    def _prepare_url(self, url: str) -> httpx2.URL:
        memo = self.__dict__.setdefault("_tollgate_urls", {})
        prepared = memo.get(url)
        if prepared is None:
            prepared = super()._prepare_url(url)
            if len(memo) < 64:  # a handful of paths
                memo[url] = prepared
        return prepared

    def _build_request(self, options, *, retries_taken: int = 0) -> httpx2.Request:
        key = self._template_key(options, retries_taken)
        if key is None:
            return super()._build_request(options, retries_taken=retries_taken)
        templates = self.__dict__.setdefault("_tollgate_templates", {})
        template = templates.get(key)
        if template is None:
            request = super()._build_request(options, retries_taken=retries_taken)
            if len(templates) < 64:
                templates[key] = _RequestTemplate.of(request)
            return request
        return template.with_body(openapi_dumps(options.json_data))

    def _template_key(self, options, retries_taken: int) -> tuple | None:
        plain = (
            options.method == "post"
            and type(options.json_data) is dict
            and options.extra_json is None
            and options.files is None
            and options.content is None
            and not options.params
            and not (is_given(options.headers) and options.headers)
            and not is_given(options.timeout)
            and options.follow_redirects is None
            and options.security == _DEFAULT_SECURITY
            and self._builds_alike
        )
        return (options.url, retries_taken, self.api_key) if plain else None

    @functools.cached_property
    def _builds_alike(self) -> bool:
        """Nothing of the client's own makes two requests differ: no
        idempotency header, default query or auth that can change per request.
        Fixed at construction (a changed key is part of the template's key);
        an attribute this SDK version doesn't have counts as "may differ"."""
        return (
            getattr(self, "_idempotency_header", _MISSING) is None
            and not self.default_query
            and all(getattr(self, name, _MISSING) is None for name in _PER_REQUEST_AUTH)
        )


# Client attributes through which the SDK's auth can differ between requests.
_PER_REQUEST_AUTH = ("_api_key_provider", "_workload_identity_auth", "_provider")
_MISSING = object()
_DEFAULT_SECURITY = FinalRequestOptions.model_fields["security"].default


@dataclass(frozen=True, slots=True)
class _RequestTemplate:
    """A request the SDK built, minus its body."""

    method: str
    url: httpx2.URL
    headers: httpx2.Headers
    extensions: dict

    @classmethod
    def of(cls, request: httpx2.Request) -> _RequestTemplate:
        headers = request.headers.copy()
        headers.pop("Content-Length", None)  # the new body's is set by httpx
        return cls(request.method, request.url, headers, dict(request.extensions))

    def with_body(self, content: bytes) -> httpx2.Request:
        return httpx2.Request(
            self.method,
            self.url,
            headers=self.headers,
            content=content,
            extensions={
                name: dict(value) if isinstance(value, dict) else value
                for name, value in self.extensions.items()
            },
        )


@functools.cache
def _post_options_template(path: str) -> FinalRequestOptions:
    return FinalRequestOptions.construct(
        method="post", url=path, json_data=None, content=None, files=None
    )


def _post_options(path: str, body: dict[str, Any]) -> FinalRequestOptions:
    """The options the SDK's `post(path, body=...)` builds, copied from one
    built once per path: its `construct` deep-copied every field's default
    on every call (~0.07 ms of CPU per upstream call). The copy is shallow,
    so the two mutable defaults get fresh dicts of their own."""
    template = _post_options_template(path)
    return template.model_copy(
        update={"json_data": body, "params": {}, "security": dict(template.security)}
    )


class Upstream:
    """A configured async client. Build it through `get_upstream()`."""

    def __init__(self, config: _Config) -> None:
        if not config.api_key:
            raise UpstreamUnavailable("No model provider is configured (OPENAI_API_KEY is empty).")
        self.config = config
        self._client = self._sdk_client(config)

    @staticmethod
    def _sdk_client(config: _Config) -> openai.AsyncOpenAI:
        # The SDK over its aiohttp transport (openai[aiohttp]): the httpx/anyio
        # transport cost ~4-6 ms of CPU per POST under load (py-spy), much of it
        # httpcore scanning its whole pool for expired connections on every
        # response; aiohttp's connector keeps idle connections in a queue.
        limits = httpx2.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_connections,
        )
        http_client = _DirectHttpClient(
            timeout=httpx2.Timeout(config.timeout, connect=min(config.timeout, 5.0)),
            follow_redirects=False,
            transport=_AiohttpTransport(limits=limits),
        )
        return _SdkClient(
            api_key=config.api_key,
            base_url=config.base_url,
            organization=config.organization,
            project=config.project,
            timeout=config.timeout,
            max_retries=config.max_retries,
            http_client=http_client,
        )

    @property
    def client(self) -> openai.AsyncOpenAI:
        return self._client

    def __repr__(self) -> str:
        return f"<Upstream {self.config.base_url or 'api.openai.com'}>"

    def _chat_params(
        self,
        *,
        model: str | None,
        messages: list[dict],
        max_output_tokens: int,
        safety_identifier: str | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": model or self.config.default_model,
            "messages": messages,
            self.config.max_tokens_param: max_output_tokens,
        }
        if safety_identifier:
            params["safety_identifier"] = safety_identifier
        return params

    async def chat(
        self,
        *,
        model: str | None,
        messages: list[dict],
        max_output_tokens: int,
        safety_identifier: str | None,
        response_format: dict | None = None,
    ) -> UpstreamResult:
        params = self._chat_params(
            model=model,
            messages=messages,
            max_output_tokens=max_output_tokens,
            safety_identifier=safety_identifier,
        )
        if response_format:
            params["response_format"] = response_format
        completion, request_id = await self._post_json("/chat/completions", params)
        choices = completion.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        return UpstreamResult(
            text=(choice.get("message") or {}).get("content") or "",
            usage=TokenUsage.from_payload(completion.get("usage")),
            upstream_request_id=request_id or completion.get("id"),
            model=completion.get("model") or params["model"],
            finish_reason=choice.get("finish_reason"),
        )

    async def _post_json(self, path: str, body: dict[str, Any]) -> tuple[dict, str | None]:
        """POST through the SDK's own low-level request method: same auth, headers,
        timeouts, bounded retries and error classes as `create()`, but without the
        SDK's typed-params transform and response models, which measured ~1 ms of
        CPU per call on the hot path (bench/meter_overhead.py). Streams keep
        `create(stream=True)`."""
        try:
            response = await self.client.request(httpx2.Response, _post_options(path, body))
        except openai.OpenAIError as exc:
            status = getattr(exc, "status_code", None)
            if path == "/moderations" and status in (404, 405, 501):
                raise _ModerationMissing() from None
            raise _map_error(exc) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            logger.warning("upstream answered %s with a body that is not a JSON object", path)
            raise UpstreamError()
        return payload, response.headers.get("x-request-id")

    async def chat_stream(
        self,
        *,
        model: str | None,
        messages: list[dict],
        max_output_tokens: int,
        safety_identifier: str | None,
        response_format: dict | None = None,
    ) -> AsyncIterator[UpstreamChunk]:
        """Yields text deltas as they come, and the provider's usage chunk last.
        A stream without usage simply ends without a chunk carrying `usage`."""
        params = self._chat_params(
            model=model,
            messages=messages,
            max_output_tokens=max_output_tokens,
            safety_identifier=safety_identifier,
        )
        if response_format:
            params["response_format"] = response_format
        try:
            stream = await self.client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as exc:
            raise _map_error(exc) from None
        request_id = stream.response.headers.get("x-request-id")
        received: list[str] = []
        chunks = 0
        finished = False
        try:
            async for event in stream:
                chunks += 1
                request_id = request_id or event.id
                choice = event.choices[0] if event.choices else None
                delta = (choice.delta.content or "") if choice and choice.delta else ""
                usage = TokenUsage.from_openai(event.usage)
                finish_reason = choice.finish_reason if choice else None
                finished = finished or bool(finish_reason)
                if not (delta or usage or finish_reason):
                    continue
                received.append(delta)
                yield UpstreamChunk(
                    delta=delta,
                    usage=usage,
                    upstream_request_id=request_id,
                    finish_reason=finish_reason,
                    model=event.model,
                )
        except Exception as exc:
            # Whatever broke the stream (a provider error, a malformed chunk, a
            # stall past the read timeout, a dropped connection) ends it as one
            # of our errors: a timeout before the first token is a 504.
            raise _stream_failure(exc, received, chunks, request_id) from None
        finally:
            await stream.close()
        if not finished:
            # A stream that simply stopped (no finish reason) is never complete.
            raise UpstreamStreamInterrupted(
                text_so_far="".join(received),
                chunks_received=chunks,
                upstream_request_id=request_id,
                details={"cause": "no_finish_reason"},
            )

    async def moderate(self, *, text: str) -> ModerationResult:
        return (await self.moderate_many([text]))[0]

    async def moderate_many(self, texts: list[str]) -> list[ModerationResult]:
        """One /moderations request for several inputs (results in input order).
        The pre-screen is fail-closed: when it can't answer, the call is refused,
        with an error that says it was the moderation step."""
        one = texts[0] if len(texts) == 1 else texts
        body = {"input": one, "model": self.config.moderation_model}
        try:
            response, _request_id = await self._post_json("/moderations", body)
        except _ModerationMissing:
            raise UpstreamError(MODERATION_MISSING, details={"stage": "moderation"}) from None
        except ApiError as error:
            error.details.setdefault("stage", "moderation")
            raise
        results = response.get("results") or []
        if len(results) != len(texts) or not all(isinstance(r, dict) for r in results):
            logger.warning("the moderation endpoint answered without a result per input")
            raise UpstreamError()
        model = response.get("model") or self.config.moderation_model
        return [
            ModerationResult(
                flagged=bool(result.get("flagged")),
                categories={
                    name: bool(hit)
                    for name, hit in (result.get("categories") or {}).items()
                    if hit is not None
                },
                model=model,
            )
            for result in results
        ]

    async def aclose(self) -> None:
        await self._client.close()


# One client per event loop and configuration: an httpx connection pool belongs to
# the loop that opened it, and reusing it is what keeps the hot path cheap.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Config, Upstream]] = (
    weakref.WeakKeyDictionary()
)
_loopless: dict[_Config, Upstream] = {}


def get_upstream() -> Upstream:
    """The configured client for the running loop; rebuilt when settings change."""
    config = _Config.from_settings()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        cache = _loopless
    else:
        cache = _clients.get(loop)
        if cache is None:
            cache = _clients[loop] = {}
    upstream = cache.get(config)
    if upstream is None:
        upstream = cache[config] = Upstream(config)
    return upstream


# --- Errors -----------------------------------------------------------------------------


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException | TimeoutError)


def _stream_failure(
    exc: BaseException, received: list[str], chunks: int, request_id: str | None
) -> ApiError:
    text = "".join(received)
    if isinstance(exc, openai.OpenAIError):
        cause = _map_error(exc).code
    elif _is_timeout(exc):
        cause = UpstreamTimeout.code
    else:
        logger.warning("upstream stream broke: %s", redact(type(exc).__name__))
        cause = "malformed_stream" if isinstance(exc, ValueError) else "stream_broken"
    if not text and cause == UpstreamTimeout.code:
        return UpstreamTimeout(
            "The model provider took too long to start its answer.",
            details={"cause": "timeout_before_first_token"},
        )
    return UpstreamStreamInterrupted(
        text_so_far=text,
        chunks_received=chunks,
        upstream_request_id=request_id,
        details={"cause": cause},
    )


def _retry_after(exc: openai.APIStatusError) -> dict[str, str]:
    value = exc.response.headers.get("retry-after")
    if value and value.strip().isdigit():
        return {"Retry-After": value.strip()}
    return {}


def _map_error(exc: openai.OpenAIError) -> ApiError:
    """Our error for a provider failure; logs the provider's side, redacted."""
    status = getattr(exc, "status_code", None)
    logger.warning(
        "upstream call failed: %s",
        redact(f"{type(exc).__name__} status={status} {exc}"),
        extra={"upstream_status": status, "upstream_error": type(exc).__name__},
    )
    details = {"upstream_status": status} if status else {}
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeout()
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamUnavailable(details=details)
    if isinstance(exc, openai.RateLimitError):
        return UpstreamUnavailable(
            "The model provider is rate limiting us right now. Try again shortly.",
            details=details,
            headers=_retry_after(exc),
        )
    if isinstance(exc, openai.APIStatusError):
        if status in (503, 529):
            return UpstreamUnavailable(details=details, headers=_retry_after(exc))
        if status in (401, 403):
            logger.error("the model provider refused the operator's credentials")
            return UpstreamError(
                "The model provider refused our credentials. The operator has been told.",
                details=details,
            )
        if isinstance(exc, openai.BadRequestError) and exc.code == "context_length_exceeded":
            return InvalidRequest("The input is too long for the model. Shorten it and try again.")
        return UpstreamError(details=details)
    return UpstreamError()

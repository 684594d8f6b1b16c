"""A lean ASGI path for API-key calls to the feature endpoints.

Why: under ASGI every `MiddlewareMixin` hook (process_request / process_view /
process_response) is run through `sync_to_async` — a thread hop each — and the
full browser stack (sessions, CSRF, auth, messages, allauth, htmx, the
session's workspace, WhiteNoise) costs ~8 ms per metered call before the view
starts. A request that carries `Authorization: Bearer …` to a feature endpoint
needs none of it: such a request authenticates by the key alone
(`usage.authentication.ApiKeyAuthentication` never falls back to the session
when the header is there), the key decides the workspace, and suspension and
the role are checked there too (`accounts.permissions.IsWorkspaceMember`). CSRF doesn't
apply to bearer auth. Everything else (session callers, pages, other APIs) keeps
the full stack in `settings.MIDDLEWARE`.

The lean chain keeps what shapes the answer: ALLOWED_HOSTS and the common/
security/clickjacking headers, Prometheus metrics, the API error rendering and
billing's quota-refusal notice — with the CPU-only hooks run inline on the event
loop instead of hopping threads."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import response_for_exception
from django.db import close_old_connections, reset_queries
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.utils.log import log_response
from django.utils.module_loading import import_string
from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware

from config.bearer import parse_bearer

# ai_features' API (ai_features/api_urls.py): the metered endpoints and their reads.
LEAN_PATH_PREFIXES = (
    "/api/v1/summaries",
    "/api/v1/features",
    "/api/v1/extractions",
    "/api/v1/chats",
    "/api/v1/documents",
)

# The metered calls answered in one piece: their view runs no sync code in the
# request's thread (DRF's checks and rendering run on the loop, the meter's
# queries on its own DB threads), so the request needs no thread at all.
INLINE_POSTS = ("/api/v1/summaries", "/api/v1/extractions")
INLINE_POST_RUNS = ("/api/v1/features/", "/runs")

# Same order and the same hooks as settings.MIDDLEWARE, minus the browser ones.
LEAN_MIDDLEWARE = [
    "config.lean.InlinePrometheusBefore",
    "config.lean.InlineSecurity",
    "config.inputguard.InputGuardMiddleware",  # async-native: no thread hop
    "config.lean.InlineCommon",
    "config.lean.InlineXFrameOptions",
    "config.errors.ApiErrorMiddleware",  # process_exception only: no hop per request
    "config.lean.InlinePrometheusAfter",
    "billing.middleware.QuotaRefusalMiddleware",  # async-native; hops only on a 402
]


class InlineHooks:
    """For a `MiddlewareMixin` whose hooks are pure CPU (no database, no I/O):
    call them on the event loop rather than through a sync_to_async thread.
    Exception hooks stay sync (Django only calls them on an error)."""

    sync_capable = False
    async_capable = True

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class InlineSecurity(InlineHooks, SecurityMiddleware):
    pass


class InlineCommon(InlineHooks, CommonMiddleware):
    pass


class InlineXFrameOptions(InlineHooks, XFrameOptionsMiddleware):
    pass


class InlinePrometheusBefore(InlineHooks, PrometheusBeforeMiddleware):
    pass


class InlinePrometheusAfter(InlineHooks, PrometheusAfterMiddleware):
    # prometheus_client's `labels()` checks and stringifies the label values on
    # every call, ~10 times a request; the children per label values are kept
    # (a bounded set: views, methods, statuses).
    _children: dict[tuple, object] = {}

    def label_metric(self, metric, request, response=None, **labels):
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = metric.labels(**labels)
            if len(self._children) < 10_000:
                self._children[key] = child
        return child

    # An async process_view is awaited by the handler as is (no thread hop).
    async def process_view(self, request, view_func, *args, **kwargs):
        return super().process_view(request, view_func, *args, **kwargs)

    # Likewise: DRF's Response has `render`, so the handler calls this hook for
    # every API answer, and a sync one hopped to a thread each time (~2% of a
    # worker's CPU under load, py-spy).
    async def process_template_response(self, request, response):
        return super().process_template_response(request, response)


class _FlatChain:
    """LEAN_MIDDLEWARE's hooks called one after the other, for a metered POST
    that none of them refuses or redirects: the same hook objects' methods, in
    Django's order, without the chain around them. Django nests every
    middleware (and its exception wrapper) as a coroutine frame, and the whole
    stack of ~20 frames is resumed at each await of the view (the call waits
    on the meter's task, the DB threads, Redis): ~8 % of a worker's CPU under
    load (py-spy), for hooks that are plain function calls.

    What a request that a hook refuses (bad host, input guard, SSL redirect)
    gets stays the chain's: `answer` returns None before anything counted it,
    and the caller runs the chain. `tests/ai_features/test_lean_path.py` pins
    LEAN_MIDDLEWARE, so a middleware added there can't be missed here."""

    def __init__(self, handler: ASGIHandler) -> None:
        async def never(request):  # the hooks are called directly, never chained
            raise AssertionError("not a chain")

        hooks = [import_string(path)(never) for path in LEAN_MIDDLEWARE]
        (
            self.before,
            self.security,
            self.guard,
            self.common,
            self.xframe,
            _errors,  # process_exception only: through the handler's list, as Django does
            self.after,
            self.quota,
        ) = hooks
        self.handler = handler
        self._matches: dict[tuple, object] = {}

    async def answer(self, request):
        """The response, or None when a hook would refuse: run the chain then."""
        match = self._passes(request)
        if match is None:
            return None
        self.before.process_request(request)
        self.after.process_request(request)
        try:
            response = await self._view(request, match)
            await self.quota.anotice(request, response)
            for hook in (self.after, self.xframe, self.common, self.security, self.before):
                response = hook.process_response(request, response)
        except Exception as exc:  # as the chain's exception wrappers do
            response = await sync_to_async(response_for_exception, thread_sensitive=False)(
                request, exc
            )
        # The rest of Django's get_response_async (its set_urlconf is the default).
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            await sync_to_async(log_response, thread_sensitive=False)(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        return response

    def _passes(self, request):
        """The view's match when no request hook answers or raises, else None."""
        try:
            if (
                self.security.process_request(request) is not None
                or self.guard._refusal(request) is not None
                or self.common.process_request(request) is not None
            ):
                return None
            match = self._resolve(request)
        except Exception:  # DisallowedHost, Resolver404, …: the chain answers it
            return None
        return match if iscoroutinefunction(match.func) else None

    def _resolve(self, request):
        """Django's resolve_request, remembered per path (the metered POSTs'
        paths are few; one regex walk over the URLconf each was ~1.5 %)."""
        if hasattr(request, "urlconf"):
            raise Resolver404  # a per-request URLconf: the chain's way
        resolver = get_resolver()
        key = (resolver, request.path_info)
        match = self._matches.get(key)
        if match is None:
            match = resolver.resolve(request.path_info)
            if len(self._matches) < 1_000:
                self._matches[key] = match
        request.resolver_match = match
        return match

    async def _view(self, request, match):
        response = await self.after.process_view(request, match.func, match.args, match.kwargs)
        if response is None:
            try:
                response = await match.func(request, *match.args, **match.kwargs)
            except Exception as exc:
                response = await sync_to_async(
                    self.handler.process_exception_by_middleware, thread_sensitive=True
                )(exc, request)
                if response is None:
                    raise
        if callable(getattr(response, "render", None)):
            response = await self.after.process_template_response(request, response)
            rendered = response.render()
            response = await rendered if asyncio.iscoroutine(rendered) else rendered
        return response


def _unlink(response) -> None:
    """Break the reference cycles an answered DRF response holds, so that the
    request's objects (~80: request, view, parsers, the caller's models, the
    response) are freed by reference counting as the request ends. Left in a
    cycle, they waited for the garbage collector: every ~130 calls one young
    collection freed ~10,000 of them in a single 7-12 ms pause, a p99 spike.
    The cycles: DRF's renderer context names the response itself; DRF's
    request and its view name each other (the request's parser context holds
    the view); the on-the-loop `render` (ai_features.api_features._rendered)
    closes over the response."""
    vars(response).pop("render", None)
    context = getattr(response, "renderer_context", None)
    if context is not None:
        drf_request = context.get("request")
        if drf_request is not None:
            drf_request.parser_context = None
        response.renderer_context = None


class _MiddlewareSettings:
    """settings, with MIDDLEWARE replaced (read by BaseHandler.load_middleware)."""

    def __init__(self, middleware: list[str]) -> None:
        self.MIDDLEWARE = middleware

    def __getattr__(self, name: str):
        return getattr(settings, name)


class _RequestThreads:
    """Idle one-thread executors, lent to one request at a time.

    Django gives every ASGI request a fresh ThreadSensitiveContext: a new thread
    for its sync work (here only the request_started/finished receivers and
    response.close()) and, on exit, another thread to join it — two thread
    starts per request, ~25% of the event loop's time under load. Lending a
    kept executor gives each request the same guarantee (its own single thread
    while it runs) without the churn. Only the event loop touches this."""

    def __init__(self, keep: int) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._keep = keep

    def take(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lean-request")

    def give(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self._keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)


class LeanApiHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._threads = _RequestThreads(keep=32)
        self._flat = _FlatChain(self)

    async def __call__(self, scope, receive, send):
        # Without the meter's DB pool, run_db falls back to sync_to_async, which
        # a context with a lent executor refuses once the request has answered
        # (a disconnected call still settles after that): keep Django's way.
        if not settings.TOLLGATE_METER_DB_THREADS:
            return await super().__call__(scope, receive, send)
        if _answers_on_the_loop(scope):
            return await self._handle_on_the_loop(scope, receive, send)
        executor = self._threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._threads.give(executor)

    async def _handle_on_the_loop(self, scope, receive, send):
        """Django's `ASGIHandler.handle` for a metered call, minus its two
        thread hops: the request_started/finished receivers (reset_queries,
        close_old_connections, close_caches, reset_urlconf) tidy the thread
        that ran the request's sync code, and this request ran none, so they
        have nothing to do: they are skipped while they are the only receivers,
        and run here, on the loop, when another receiver listens."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        tidy = _request_signals_needed()
        if tidy:
            signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return
        request.answered_on_the_loop = True  # see ai_features.api_features._rendered
        # No disconnect listener (Django's cancels the view when the client goes
        # away): the meter's call is shielded and settles anyway, and the answer
        # to a gone client is dropped by the server.
        try:
            response = await self._flat.answer(request) or await self.run_get_response(request)
            response._handler_class = self.__class__
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self.send_response(response, send)
        except asyncio.CancelledError:
            if tidy:
                signals.request_finished.send(sender=self.__class__)
            raise
        finally:
            body_file.close()
        if tidy:
            response.close()  # sends request_finished
        else:
            _close_without_signal(response)
        _unlink(response)

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE only; reuse its
        # builder (adaptation, process_view/exception lists) with our list.
        with mock.patch.object(base, "settings", _MiddlewareSettings(LEAN_MIDDLEWARE)):
            super().load_middleware(is_async=is_async)


# Django's own request_started/finished receivers: they tidy the thread that ran
# a request's sync code (its queries log, connections, caches, urlconf).
_THREAD_TIDYING = (reset_queries, close_old_connections, close_caches, reset_urlconf)


def _request_signals_needed() -> bool:
    """False while only Django's thread-tidying receivers listen (a request
    answered on the loop ran no sync code: ~3% of a worker's CPU under load
    went to sending them, py-spy); any other receiver gets its signals."""
    for signal in (signals.request_started, signals.request_finished):
        for _key, ref, *_rest in signal.receivers:
            if ref() not in _THREAD_TIDYING:
                return True
    return False


def _close_without_signal(response) -> None:
    """`HttpResponseBase.close()` minus its request_finished signal."""
    for closer in response._resource_closers:
        with contextlib.suppress(Exception):
            closer()
    response._resource_closers.clear()
    response.closed = True


def is_keyed_feature_call(scope: dict) -> bool:
    """An HTTP request to a feature endpoint that authenticates by API key."""
    if scope["type"] != "http" or not scope["path"].startswith(LEAN_PATH_PREFIXES):
        return False
    values = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
    if not values:
        return False
    # As Django's request.headers shows them: repeated headers joined by ",".
    return parse_bearer(b",".join(values).decode("latin-1")) is not None


def _answers_on_the_loop(scope: dict) -> bool:
    path = scope["path"]
    return scope["method"] == "POST" and (
        path in INLINE_POSTS
        or (path.startswith(INLINE_POST_RUNS[0]) and path.endswith(INLINE_POST_RUNS[1]))
    )

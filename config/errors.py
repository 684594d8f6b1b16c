"""The API's one error format (API.md "Errors"):

    {"error": {"code": "...", "message": "...", "details": {...}}}

Services raise `ApiError` (or a subclass); DRF views get it rendered by
`api_exception_handler`, plain Django (async) views by `ApiErrorMiddleware` or
`error_response`. Nothing under /api/ ever answers with an HTML page."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.deprecation import MiddlewareMixin
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    code = "invalid_request"
    default_message = "The request is not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        if code:
            self.code = code
        if status:
            self.status = status
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class AuthenticationRequired(ApiError):
    status, code = 401, "authentication_required"
    default_message = "Authentication credentials were not provided."


class InvalidApiKey(ApiError):
    status, code = 401, "invalid_api_key"
    default_message = "The API key is unknown, revoked or expired."


class QuotaExceeded(ApiError):
    status, code = 402, "quota_exceeded"
    default_message = "Your plan's included tokens for this period are used up."


class SpendCapReached(ApiError):
    status, code = 402, "spend_cap_reached"
    default_message = "This request would pass a spending cap."


class Forbidden(ApiError):
    status, code = 403, "forbidden"
    default_message = "You are not allowed to do this."


class WorkspaceSuspended(ApiError):
    status, code = 403, "workspace_suspended"
    default_message = "This workspace or account is suspended. Contact support."


class NotFound(ApiError):
    status, code = 404, "not_found"
    default_message = "Not found."


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"
    default_message = "The request body or upload is too large."


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"
    default_message = "This type of content is not accepted."


class ContentFlagged(ApiError):
    status, code = 422, "content_flagged"
    default_message = "The input was flagged by the content pre-screen and was not processed."


class RateLimited(ApiError):
    status, code = 429, "rate_limited"
    default_message = "Too many requests. Slow down and retry after the indicated time."


class UpstreamError(ApiError):
    status, code = 502, "upstream_error"
    default_message = "The model provider failed to answer. You were not charged for it."


class UpstreamUnavailable(ApiError):
    status, code = 503, "upstream_unavailable"
    default_message = "The model provider is unreachable or overloaded. Try again shortly."


class ServiceUnavailable(ApiError):
    """One of our own dependencies (PostgreSQL, Redis) is briefly unavailable."""

    status, code = 503, "service_unavailable"
    default_message = "The service is briefly unavailable. Retry in a moment."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        from django.conf import settings

        self.headers.setdefault("Retry-After", str(settings.TOLLGATE_RETRY_AFTER_SECONDS))


class UpstreamTimeout(ApiError):
    status, code = 504, "upstream_timeout"
    default_message = "The model provider took too long to answer."


def error_response(error: ApiError) -> JsonResponse:
    response = JsonResponse(error.as_dict(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _from_drf(exc: drf.APIException) -> ApiError:
    if isinstance(exc, drf.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return InvalidRequest("Some fields are not valid.", details=details)
    if isinstance(exc, drf.ParseError):
        return InvalidRequest(f"Malformed request body: {exc.detail}")
    if isinstance(exc, drf.NotAuthenticated):
        return AuthenticationRequired()
    if isinstance(exc, drf.AuthenticationFailed):
        return InvalidApiKey(str(exc.detail))
    if isinstance(exc, drf.PermissionDenied):
        return Forbidden(str(exc.detail))
    if isinstance(exc, drf.NotFound):
        return NotFound()
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType(str(exc.detail))
    if isinstance(exc, drf.Throttled):
        headers = {"Retry-After": str(exc.wait or 1)}
        return RateLimited(headers=headers, details={"limit": "rpm"})
    if isinstance(exc, drf.MethodNotAllowed):
        return ApiError(str(exc.detail), code="method_not_allowed", status=405)
    return ApiError(str(exc.detail), code="invalid_request", status=exc.status_code)


def dependency_down(exc: BaseException | None) -> bool:
    """Is `exc` one of our own dependencies being unreachable (not a bug)?"""
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(
        exc, OperationalError | InterfaceError | RedisConnectionError | RedisTimeoutError
    )


def to_api_error(exc: Exception) -> ApiError | None:
    """Map any exception we know how to explain to an ApiError (None: a bug)."""
    if isinstance(exc, ApiError):
        return exc
    if dependency_down(exc):
        logger.warning("dependency unavailable: %s", type(exc).__name__)
        return ServiceUnavailable()
    if isinstance(exc, drf.APIException):
        return _from_drf(exc)
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return Forbidden()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, MultiPartParserError):
        return InvalidRequest(f"The multipart body could not be read: {exc}")
    if isinstance(exc, BadRequest | SuspiciousOperation):
        return InvalidRequest("The request could not be understood.")
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    error = to_api_error(exc)
    if error is None:
        return None  # a real bug: let Django log it and answer 500
    response = Response(error.as_dict(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def wants_page(request: HttpRequest) -> bool:
    """A browser navigating to a page (not the API, htmx or a fetch for JSON)."""
    accept = request.headers.get("Accept", "")
    return (
        not is_api_request(request)
        and "text/html" in accept
        and not request.headers.get("HX-Request")
    )


def error_page(request: HttpRequest, error: ApiError):
    """An ApiError met by a page: the styled page for its status, in words."""
    from django.shortcuts import render

    template = {403: "403.html", 404: "404.html"}.get(error.status, "error.html")
    context = {
        "exception": error.message,
        "error": error,
        "request_path": request.path,
        "upgrade_url": error.details.get("upgrade_url") if error.details else None,
    }
    response = render(request, template, context, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


class ApiErrorMiddleware(MiddlewareMixin):
    """Renders ApiError raised by plain Django views (sync or async) under /api/ in
    the API's format, and as a styled page when a browser navigated to a page."""

    def process_exception(self, request: HttpRequest, exc: Exception):
        if isinstance(exc, ApiError):
            if wants_page(request):
                return error_page(request, exc)
            return error_response(exc)
        if is_api_request(request):
            error = to_api_error(exc)
            if error is not None:
                return error_response(error)
        return None


def _release_connections() -> None:
    """Under ASGI Django runs error handlers in a worker thread of their own
    (sync_to_async, not thread-sensitive), where no request_finished closes the
    database connection our styled pages opened (nav, banners): close it here.
    Never inside a transaction (a test's, or a view's atomic block)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def api_not_found(request: HttpRequest, exception: Exception | None = None):
    if is_api_request(request):
        return error_response(NotFound())
    from django.views.defaults import page_not_found

    try:
        return page_not_found(request, exception)
    finally:
        _release_connections()


def page_forbidden(request: HttpRequest, exception: Exception | None = None):
    """The styled 403 page (templates/403.html: why, whom to ask, the way back)."""
    if is_api_request(request):
        return error_response(Forbidden(str(exception or "") or Forbidden.default_message))
    from django.views.defaults import permission_denied

    try:
        return permission_denied(request, exception)
    finally:
        _release_connections()


def api_server_error(request: HttpRequest):
    # Django calls this while handling the exception: a dependency that is down
    # (raised anywhere, middleware included) is a 503, never a 500.
    if dependency_down(sys.exc_info()[1]):
        return _unavailable(request)
    if is_api_request(request):
        logger.error("unhandled error on %s", request.path)
        return error_response(
            ApiError("Something went wrong on our side.", code="internal_error", status=500)
        )
    # Rendered without the request (its context may be what broke), with the
    # support address so the page offers a way on.
    from django.conf import settings
    from django.http import HttpResponseServerError
    from django.template.loader import render_to_string

    try:
        html = render_to_string("500.html", {"support_email": settings.TOLLGATE_SUPPORT_EMAIL})
    except Exception:  # the error page must never fail
        html = "<h1>Server Error (500)</h1>"
    return HttpResponseServerError(html)


def _unavailable(request: HttpRequest):
    error = ServiceUnavailable()
    if is_api_request(request):
        return error_response(error)
    from django.http import HttpResponse

    response = HttpResponse(
        "<!doctype html><title>Briefly unavailable</title>"
        "<h1>Briefly unavailable</h1><p>Tollgate can't reach one of its services right "
        "now. Please retry in a moment.</p>",
        status=503,
    )
    response["Retry-After"] = error.headers["Retry-After"]
    return response

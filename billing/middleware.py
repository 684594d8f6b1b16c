"""Notices quota refusals on their way out: a 402 quota_exceeded answer (from
any feature endpoint, page or API) triggers billing.services.usage_hooks.on_quota_exceeded for
the caller's workspace — the owners' and admins' one email of the period and
the banner. Cheap for every other response: it only looks at status 402."""

from __future__ import annotations

import json
import logging

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger(__name__)


def _workspace(request: HttpRequest):
    workspace = getattr(request, "workspace", None)
    if workspace is not None:
        return workspace
    header = request.headers.get("Authorization")
    if not header:
        return None
    from usage.apikeys import lookup_key, parse_bearer

    secret = parse_bearer(header)
    try:
        return lookup_key(secret).workspace if secret else None
    except Exception:  # an invalid key can't have been refused for quota
        return None


class QuotaRefusalMiddleware(MiddlewareMixin):
    # Under ASGI, MiddlewareMixin would run process_response in a thread for
    # every response; the status check is pure CPU, so the async path does it
    # inline and only runs the notice's queries on the meter's DB threads (a
    # fixed pool: a burst of 402s must not open a connection per request).
    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        await self.anotice(request, response)
        return response

    async def anotice(self, request: HttpRequest, response: HttpResponse) -> None:
        """The async hook (also called by config.lean's flat chain)."""
        if _is_quota_refusal(response) and not _already_noticed(request):
            from usage.dbpool import run_db

            await run_db(_notice, request)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if _is_quota_refusal(response):
            _notice(request)
        return response


def _is_quota_refusal(response: HttpResponse) -> bool:
    if response.status_code != 402 or response.streaming:
        return False
    try:
        return json.loads(response.content)["error"]["code"] == "quota_exceeded"
    except (ValueError, KeyError, TypeError):
        return False


# (workspace, plan, period) whose notice this process has already sent or
# seen claimed: further refusals in the period skip the queries. The notice's
# own row (BillingNotice) stays what makes it once per period across processes.
_noticed: set[tuple] = set()


def _notice_key(workspace_id: int, limits) -> tuple:
    return (workspace_id, limits.plan, limits.period_start)


def _already_noticed(request: HttpRequest) -> bool:
    from usage.limits import cached_limits

    workspace = getattr(request, "workspace", None)
    limits = cached_limits(workspace.pk) if workspace is not None else None
    return limits is not None and _notice_key(workspace.pk, limits) in _noticed


def _notice(request: HttpRequest) -> None:
    workspace = _workspace(request)
    if workspace is not None:
        from billing.limits import workspace_limits
        from billing.services.usage_hooks import on_quota_exceeded

        try:
            limits = workspace_limits(workspace)
            if _notice_key(workspace.pk, limits) in _noticed:
                return
            on_quota_exceeded(workspace.pk, limits)
            _noticed.add(_notice_key(workspace.pk, limits))
        except Exception:  # a notice must never break the answer
            logger.exception("quota notice failed")

"""Notices quota refusals on their way out: a 402 quota_exceeded answer (from
any feature endpoint, page or API) triggers billing.limits.quota_exceeded for
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
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code != 402 or response.streaming:
            return response
        try:
            code = json.loads(response.content)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return response
        if code != "quota_exceeded":
            return response
        workspace = _workspace(request)
        if workspace is not None:
            from billing.limits import quota_exceeded, workspace_limits

            try:
                quota_exceeded(workspace, workspace_limits(workspace))
            except Exception:  # a notice must never break the answer
                logger.exception("quota notice failed")
        return response

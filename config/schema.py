"""The OpenAPI schema (/api/schema/, drf-spectacular) tells the truth about errors.

Every API error has one body (`config.errors`), and which statuses an operation
can answer follows from what it is, so they are added here once instead of
by hand on every view:

- any operation: 401 (no or a bad key), 403 (role, suspension), 400 (the input
  guard refuses NUL/surrogates/out-of-range numbers in any field or query),
  503 `service_unavailable` (our database or Redis briefly down);
- a path with an id: 404 (also another workspace's object);
- a body (POST/PUT/PATCH): 413 and 415;
- a metered feature call (a view with `metered = True`): 402, 404 (a
  `document_id` that isn't yours), 422, 429 and the provider's 502/503/504.

Views still document their own success shapes; a view may list an error status
itself to describe it more precisely."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)

ALWAYS = {
    400: "invalid_request: a field or query value is not valid (details name it)",
    401: "authentication_required / invalid_api_key",
    403: "forbidden (role, plan) / workspace_suspended",
    503: "service_unavailable (our database or Redis; Retry-After) / upstream_unavailable",
}
WITH_ID = {404: "not_found (also another workspace's object)"}
WITH_BODY = {413: "payload_too_large", 415: "unsupported_media_type"}
METERED = {
    404: "not_found (a document_id, conversation or feature that isn't yours)",
    402: "quota_exceeded / spend_cap_reached / payment_overdue",
    422: "content_flagged (the moderation pre-screen; not charged)",
    429: "rate_limited (Retry-After; details.limit names which)",
    502: "upstream_error",
    504: "upstream_timeout",
}


class TollgateAutoSchema(AutoSchema):
    def _error_statuses(self) -> dict[int, str]:
        statuses = dict(ALWAYS)
        if all(p is AllowAny for p in getattr(self.view, "permission_classes", [])):
            del statuses[401], statuses[403]  # public: nobody is refused
        if "{" in self.path:
            statuses |= WITH_ID
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= WITH_BODY
        if getattr(self.view, "metered", False):
            statuses |= METERED
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status, description in sorted(self._error_statuses().items()):
            if str(status) not in responses:
                body = self._get_response_for_code(ERROR, str(status), direction=direction)
                body["description"] = description
                responses[str(status)] = body
        return responses


# A date query parameter (`start`, `end`): YYYY-MM-DD or an ISO date-time; empty
# means no bound. A real calendar date is checked by the view (400).
DATE_PARAM = {
    "type": "string",
    "pattern": r"^(\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?)?$",
}


def listed(name: str, item: Any) -> Any:
    """`{"results": [item, ...]}`: a whole, unpaginated list (item: a serializer
    class or instance)."""
    item_class = item if isinstance(item, type) else item.__class__
    return inline_serializer(name, {"results": item_class(many=True)})

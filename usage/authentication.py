"""API-key authentication for every API view (`Authorization: Bearer tg_live_…`),
the feature endpoints included; the lookup is `usage.apikeys`.

Async views (the metered feature endpoints) look the key up on the event loop
first (`aresolve_key`: one async Redis GET when cached); DRF then authenticates
in a worker thread and finds the answer on the request, so a burst of calls
never queues on the sync Redis pool."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication

from config.errors import ApiError
from usage.apikeys import KeyContext, alookup_key, lookup_key, parse_bearer

RESOLVED_KEY = "_tollgate_key_context"


async def aresolve_key(request: HttpRequest) -> bool:
    """Look up the request's Bearer key ahead of DRF (async views only).
    True when the request carries a key (found, or refused: DRF raises it)."""
    header = request.headers.get("Authorization")
    secret = parse_bearer(header) if header else None
    if secret is None:
        return False
    resolved: KeyContext | ApiError
    try:
        resolved = await alookup_key(secret)
    except ApiError as refusal:  # an unknown/revoked key: DRF raises it in order
        resolved = refusal
    setattr(request, RESOLVED_KEY, resolved)
    return True


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        secret = parse_bearer(header)
        if secret is None:
            return None
        resolved = getattr(request._request, RESOLVED_KEY, None)
        if isinstance(resolved, ApiError):
            raise resolved
        ctx = resolved or lookup_key(secret)  # raises InvalidApiKey (401)
        key = ctx.api_key
        # IsWorkspaceMember reads these to resolve the tenant without a query.
        key.workspace = ctx.workspace
        key.membership = ctx.membership
        key.cache_stamp = ctx.stamp  # the meter checks it is still current
        return (ctx.user, key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

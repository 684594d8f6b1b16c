"""API-key authentication for DRF views (`Authorization: Bearer tg_live_…`).
The async feature endpoints use `usage.metering.authenticate` instead; both
share `usage.apikeys`."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication

from usage.apikeys import lookup_key, parse_bearer


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        secret = parse_bearer(header)
        if secret is None:
            return None
        ctx = lookup_key(secret)  # raises InvalidApiKey (401)
        key = ctx.api_key
        # IsWorkspaceMember reads these to resolve the tenant without a query.
        key.workspace = ctx.workspace
        key.membership = ctx.membership
        return (ctx.user, key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

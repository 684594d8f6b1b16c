"""API-key authentication (`Authorization: Bearer tg_live_…`). Filled in by the
meter: until then it authenticates nothing and session auth applies."""

from rest_framework.authentication import BaseAuthentication


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

"""OpenAPI schema extensions: how our authentication shows in /api/schema/."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "usage.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tg_live_<key>",
            "description": "An API key issued in the workspace (shown once when created).",
        }

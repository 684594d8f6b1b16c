"""OpenAPI: our API keys as a bearer scheme (imported in UsageConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "usage.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tg_live_<43 characters>",
            "description": "An API key from /keys/ (shown once when created).",
        }

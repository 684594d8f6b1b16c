from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, metrics

handler403 = "config.errors.page_forbidden"
handler404 = "config.errors.api_not_found"
handler500 = "config.errors.api_server_error"

# The metered feature endpoints first: Django tries patterns in order, and the
# hot path shouldn't pay for failing every other app's patterns on each call.
api_v1 = [
    path("", include("ai_features.api_urls")),
    path("", include("accounts.api_urls")),
    path("", include("usage.api_urls")),
    path("", include("billing.api_urls")),
    path("", include("billing.api_urls_exports")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("accounts.urls")),
    path("", include("usage.urls")),
    path("", include("billing.urls")),
    path("", include("billing.urls_finance")),
    path("", include("billing.urls_backoffice")),
    path("", include("ai_features.urls")),
]

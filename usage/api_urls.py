from django.urls import path

from usage import api

urlpatterns = [
    path("keys", api.KeyListApi.as_view(), name="api-keys"),
    path("keys/<int:key_id>", api.KeyDetailApi.as_view(), name="api-key-detail"),
    path("quota", api.QuotaApi.as_view(), name="api-quota"),
    path("usage", api.UsageApi.as_view(), name="api-usage"),
    path("usage/events", api.UsageEventsApi.as_view(), name="api-usage-events"),
]

from django.urls import path

from ai_features import api

urlpatterns = [
    path("summaries", api.summaries, name="api-summaries"),
    path("summaries/<str:summary_id>", api.summary_detail, name="api-summary-detail"),
]

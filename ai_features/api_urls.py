from django.urls import path

from ai_features import api_features

urlpatterns: list = [
    path("summaries", api_features.SummariesView.as_view(), name="api-summaries"),
    path("summaries/<str:pk>", api_features.SummaryDetailView.as_view(), name="api-summary-detail"),
    path("features", api_features.FeaturesView.as_view(), name="api-features"),
    path(
        "features/<slug:slug>/runs", api_features.FeatureRunView.as_view(), name="api-feature-run"
    ),
    path("extractions", api_features.ExtractionsView.as_view(), name="api-extractions"),
    path(
        "extractions/<int:pk>",
        api_features.ExtractionDetailView.as_view(),
        name="api-extraction-detail",
    ),
    path("chats", api_features.ChatsView.as_view(), name="api-chats"),
    path("chats/<int:pk>", api_features.ChatDetailView.as_view(), name="api-chat-detail"),
    path(
        "chats/<int:pk>/messages",
        api_features.ChatMessagesView.as_view(),
        name="api-chat-messages",
    ),
    path("documents", api_features.DocumentsView.as_view(), name="api-documents"),
    path(
        "documents/<int:pk>", api_features.DocumentDetailView.as_view(), name="api-document-detail"
    ),
]

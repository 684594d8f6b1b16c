from django.urls import path

from ai_features import views, views_dashboard, views_features

app_name = "ai_features"
urlpatterns: list = [
    path("summarize/", views.summarize, name="summarize"),
    path("extract/", views_features.extract, name="extract"),
    path("extract/runs/<int:pk>/", views_features.extraction_detail, name="extraction_detail"),
    path(
        "extract/runs/<int:pk>/download.<str:fmt>",
        views_features.extraction_download,
        name="extraction_download",
    ),
    path("chat/", views_features.chat_list, name="chat_list"),
    path("chat/new/", views_features.chat_new, name="chat_new"),
    path("chat/<int:pk>/", views_features.chat_detail, name="chat_detail"),
    path("chat/<int:pk>/rename/", views_features.chat_rename, name="chat_rename"),
    path("chat/<int:pk>/delete/", views_features.chat_delete, name="chat_delete"),
    path("documents/", views_features.documents, name="documents"),
    path("documents/<int:pk>/", views_features.document_detail, name="document_detail"),
    path("documents/<int:pk>/delete/", views_features.document_delete, name="document_delete"),
    path("usage/dashboard/", views_dashboard.dashboard, name="usage_dashboard"),
    path("usage/dashboard/export.csv", views_dashboard.export_csv, name="usage_dashboard_csv"),
]

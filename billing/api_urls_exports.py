from django.urls import path

from billing import api_exports

urlpatterns = [
    path("exports", api_exports.ExportListApi.as_view(), name="exports"),
    path("exports/<str:job_id>", api_exports.ExportDetailApi.as_view(), name="export-detail"),
    path(
        "exports/<str:job_id>/download",
        api_exports.ExportDownloadApi.as_view(),
        name="export-download",
    ),
]

from django.urls import path

from billing import views_backoffice as views

app_name = "backoffice"
urlpatterns = [
    path("backoffice/finance/", views.console, name="console"),
    path("backoffice/finance/exports/", views.exports, name="exports"),
    path("backoffice/finance/exports/new/", views.export, name="export"),
    path("backoffice/finance/exports/<uuid:job_id>/row/", views.export_row, name="export_row"),
    path("backoffice/finance/<slug:tab>/", views.console, name="tab"),
]

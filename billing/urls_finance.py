from django.urls import path

from billing import views_finance

app_name = "finance"
urlpatterns = [
    path("billing/invoices/", views_finance.invoices, name="invoices"),
    path("billing/exports/", views_finance.exports, name="exports"),
    path("billing/exports/<uuid:job_id>/row/", views_finance.export_row, name="export_row"),
]

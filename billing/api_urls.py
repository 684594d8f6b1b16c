from django.urls import path

from billing import api

urlpatterns = [
    path("billing/plans", api.PlansApi.as_view(), name="billing-plans"),
    path("billing/subscription", api.SubscriptionApi.as_view(), name="billing-subscription"),
    path("billing/upgrades", api.UpgradeApi.as_view(), name="billing-upgrades"),
    path("invoices", api.InvoiceListApi.as_view(), name="invoices"),
    path("invoices/<str:invoice_id>", api.InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("invoices/<str:invoice_id>/pdf", api.InvoicePdfApi.as_view(), name="invoice-pdf"),
]

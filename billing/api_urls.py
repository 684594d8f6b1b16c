from django.urls import path

from billing import api, api_invoices

urlpatterns = [
    path("billing/plans", api.PlansApi.as_view(), name="billing-plans"),
    path("billing/subscription", api.SubscriptionApi.as_view(), name="billing-subscription"),
    path("billing/upgrades", api.UpgradeApi.as_view(), name="billing-upgrades"),
    path("billing/details", api_invoices.BillingDetailsApi.as_view(), name="billing-details"),
    path("invoices", api_invoices.InvoiceListApi.as_view(), name="invoices"),
    path(
        "invoices/<str:invoice_id>", api_invoices.InvoiceDetailApi.as_view(), name="invoice-detail"
    ),
    path("invoices/<str:invoice_id>/pdf", api_invoices.InvoicePdfApi.as_view(), name="invoice-pdf"),
]

from django.urls import path

from billing import views, views_invoices, webhook

app_name = "billing"
urlpatterns = [
    path("pricing/", views.plans, name="plans"),
    path("billing/", views.overview, name="overview"),
    path("billing/upgrade/", views.upgrade, name="upgrade"),
    path("billing/portal/", views.portal, name="portal"),
    path("billing/cancel/", views.cancel, name="cancel"),
    path("billing/downgrade/", views.downgrade, name="downgrade"),
    path("billing/spend-cap/", views.spend_cap, name="spend_cap"),
    path("billing/details/", views_invoices.details, name="details"),
    path("billing/invoices/<str:invoice_id>/", views_invoices.invoice_detail, name="invoice"),
    path("billing/invoices/<str:invoice_id>/pdf", views_invoices.invoice_pdf, name="invoice_pdf"),
    path("stripe/webhook/", webhook.stripe_webhook, name="stripe_webhook"),
]

from billing import views_operator  # noqa: E402

urlpatterns += [
    path("operator/margin/", views_operator.margin, name="operator_margin"),
    path(
        "operator/reconciliation/",
        views_operator.reconciliation_list,
        name="operator_reconciliation",
    ),
    path(
        "operator/reconciliation/<str:day>/",
        views_operator.reconciliation_detail,
        name="operator_reconciliation_day",
    ),
]

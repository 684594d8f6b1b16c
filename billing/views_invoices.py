"""Invoice pages: one invoice (lines, tax, totals, history, credit notes, PDF),
its archived PDF, and the workspace's billing details form."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.roles import Perm
from billing import selectors
from billing.api_invoices import archived_pdf_response, details_input
from billing.services.billing_details import billing_details, billing_details_update
from config.errors import ApiError


def _membership_with(request: HttpRequest, perm: str):
    if request.workspace is None or request.membership is None:
        raise Http404("No workspace")
    if not request.membership.can(perm):
        raise Http404("Not allowed")  # pages hide what the role can't see
    return request.membership


def _invoice_or_404(request: HttpRequest, invoice_id: str):
    _membership_with(request, Perm.VIEW_BILLING)
    invoice = selectors.invoice(request.workspace, invoice_id)
    if invoice is None:
        raise Http404("No such invoice")
    return invoice


@login_required
def invoice_detail(request: HttpRequest, invoice_id: str) -> HttpResponse:
    invoice = _invoice_or_404(request, invoice_id)
    return render(request, "billing/invoice.html", {"invoice": invoice})


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: str) -> HttpResponse:
    invoice = _invoice_or_404(request, invoice_id)
    try:
        return archived_pdf_response(invoice)
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("billing:invoice", invoice_id=invoice.stripe_invoice_id)


class BillingDetailsForm(forms.Form):
    legal_name = forms.CharField(max_length=200, required=False, label="Legal name")
    address_line1 = forms.CharField(max_length=200, required=False, label="Address")
    address_line2 = forms.CharField(max_length=200, required=False, label="Address (line 2)")
    postal_code = forms.CharField(max_length=20, required=False, label="Postal code")
    city = forms.CharField(max_length=100, required=False)
    state = forms.CharField(max_length=100, required=False, label="State / region")
    country = forms.CharField(
        max_length=2, required=False, help_text="Two letters (ISO 3166), e.g. DE, FR, US"
    )
    tax_id = forms.CharField(
        max_length=64,
        required=False,
        label="Tax id",
        help_text="EU VAT number (e.g. DE123456789), GB VAT, CH VAT, US EIN, …",
    )
    invoice_email = forms.EmailField(
        required=False,
        label="Invoice email",
        help_text="Invoices and receipts go here; empty: the owners and finance members.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def details(request: HttpRequest) -> HttpResponse:
    membership = _membership_with(request, Perm.EDIT_BILLING_DETAILS)
    current = billing_details(request.workspace)
    initial = {name: getattr(current, name) for name in BillingDetailsForm.base_fields}
    form = BillingDetailsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                billing_details_update(
                    workspace=request.workspace,
                    actor=membership,
                    data=details_input(form.cleaned_data),
                )
            except ApiError as exc:
                for name, errors in exc.details.items():
                    target = name if name in form.fields else None
                    form.add_error(target, f"{exc.message} ({', '.join(map(str, errors))})")
                if not exc.details:
                    form.add_error(None, exc.message)
            else:
                messages.success(request, "Billing details saved; they appear on the next invoice.")
                return redirect("billing:details")
        status = 400
    context = {"form": form, "details": current}
    return render(request, "billing/details.html", context, status=status)

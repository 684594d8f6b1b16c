"""Admin for the invoice mirror: read-only (Stripe is the document of record);
operators correct an issued invoice only through Stripe, with a credit note
(optionally refunded) or by voiding it while open. Both need the
`billing.add_creditnote` permission, which a read-only Finance group lacks."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.models_invoices import (
    BillingDetails,
    CreditNote,
    CreditNoteLine,
    CreditNoteReason,
    Invoice,
    InvoiceLine,
    InvoiceResync,
    InvoiceStatus,
    InvoiceStatusChange,
)
from config.errors import ApiError

CORRECT_PERM = "billing.add_creditnote"


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["kind", "description", "period_start", "period_end", "quantity", "unit_amount"]
    fields += ["amount", "discount", "tax", "tier"]
    readonly_fields = fields


class HistoryInline(ReadOnlyInline):
    model = InvoiceStatusChange
    fields = readonly_fields = ["status", "at", "source"]


class CreditNoteInline(ReadOnlyInline):
    model = CreditNote
    fields = readonly_fields = [
        "number",
        "status",
        "reason",
        "total",
        "refund_amount",
        "created_at",
    ]


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), help_text="Tax included"
    )
    reason = forms.ChoiceField(choices=CreditNoteReason.choices)
    memo = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    refund = forms.BooleanField(
        required=False,
        label="Refund to the card",
        help_text="Paid invoices only; unticked, the credit stays on the customer's balance.",
    )


class ReadOnlyMirrorAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyMirrorAdmin):
    list_display = ["number", "workspace", "status", "total", "currency", "finalized_at"]
    list_display += ["paid_at", "customer_country", "stripe_invoice_id"]
    list_filter = ["status", "currency", "customer_country"]
    search_fields = ["stripe_invoice_id", "number", "workspace__name", "customer_legal_name"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace"]
    inlines = [LineInline, CreditNoteInline, HistoryInline]
    actions = ["issue_credit_note", "void_invoice"]
    change_form_template = "admin/billing/invoice/change_form.html"

    def get_urls(self):
        own = [
            path(
                "<int:pk>/credit-note/",
                self.admin_site.admin_view(self.credit_note_view),
                name="billing_invoice_credit_note",
            ),
            path(
                "<int:pk>/void/",
                self.admin_site.admin_view(self.void_view),
                name="billing_invoice_void",
            ),
        ]
        return own + super().get_urls()

    def _one(self, request: HttpRequest, queryset) -> Invoice | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one invoice.", messages.WARNING)
            return None
        return queryset.first()

    @admin.action(description="Issue a credit note / refund…", permissions=["correct"])
    def issue_credit_note(self, request, queryset):
        if (invoice := self._one(request, queryset)) is not None:
            return HttpResponseRedirect(
                reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
            )
        return None

    @admin.action(description="Void the open invoice…", permissions=["correct"])
    def void_invoice(self, request, queryset):
        if (invoice := self._one(request, queryset)) is not None:
            return HttpResponseRedirect(reverse("admin:billing_invoice_void", args=[invoice.pk]))
        return None

    def has_correct_permission(self, request) -> bool:
        return request.user.has_perm(CORRECT_PERM)

    def _context(self, request, invoice, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "invoice": invoice,
            "title": f"Invoice {invoice}",
            **extra,
        }

    def credit_note_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_correct_permission(request):
            raise PermissionDenied
        from billing.services.corrections import credit_note_issue, creditable_amount

        invoice = get_object_or_404(Invoice, pk=pk)
        form = CreditNoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                note = credit_note_issue(
                    invoice=invoice,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    memo=form.cleaned_data["memo"],
                    refund=form.cleaned_data["refund"],
                    actor=request.user,
                )
            except ApiError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Credit note {note.number} issued at Stripe.")
                return HttpResponseRedirect(
                    reverse("admin:billing_invoice_change", args=[invoice.pk])
                )
        context = self._context(request, invoice, form=form, creditable=creditable_amount(invoice))
        return TemplateResponse(request, "admin/billing/invoice/credit_note.html", context)

    def void_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_correct_permission(request):
            raise PermissionDenied
        from billing.services.corrections import invoice_void

        invoice = get_object_or_404(Invoice, pk=pk)
        error = ""
        if invoice.status != InvoiceStatus.OPEN:
            error = f"Only open invoices can be voided; this one is {invoice.status}."
        elif request.method == "POST":
            try:
                invoice_void(invoice=invoice, actor=request.user)
            except ApiError as exc:
                error = exc.message
            else:
                self.message_user(request, f"Invoice {invoice} voided at Stripe.")
                return HttpResponseRedirect(
                    reverse("admin:billing_invoice_change", args=[invoice.pk])
                )
        context = self._context(request, invoice, error=error)
        return TemplateResponse(request, "admin/billing/invoice/void.html", context)


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = readonly_fields = ["type", "description", "quantity", "amount", "tax"]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyMirrorAdmin):
    list_display = ["number", "invoice", "workspace", "status", "reason", "total", "currency"]
    list_display += ["refund_amount", "created_at"]
    list_filter = ["status", "reason", "currency"]
    search_fields = ["number", "stripe_credit_note_id", "invoice__number", "workspace__name"]
    list_select_related = ["invoice", "workspace"]
    inlines = [CreditNoteLineInline]


@admin.register(InvoiceResync)
class InvoiceResyncAdmin(ReadOnlyMirrorAdmin):
    list_display = ["started_at", "finished_at", "invoices_checked", "credit_notes_checked"]
    list_display += ["repaired", "error"]
    actions = ["run_now"]

    @admin.action(description="Run the invoice re-sync now", permissions=["correct"])
    def run_now(self, request, queryset):
        from billing.services.invoices import invoices_resync

        run = invoices_resync()
        self.message_user(request, f"Re-sync done: {run.repaired} repaired.")

    def has_correct_permission(self, request) -> bool:
        return request.user.has_perm(CORRECT_PERM)


@admin.register(BillingDetails)
class BillingDetailsAdmin(ReadOnlyMirrorAdmin):
    list_display = ["workspace", "legal_name", "country", "tax_id", "invoice_email", "synced_at"]
    search_fields = ["workspace__name", "legal_name", "tax_id"]

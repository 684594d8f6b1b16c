"""Invoices and billing details over the API (API.md "Usage, quota, keys,
billing"): the workspace's invoices with lines, tax, totals, status history,
paid date and credit notes; the archived PDF; billing details."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.http import FileResponse
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Perm
from billing import selectors
from billing.models_invoices import (
    BillingDetails,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)
from billing.services.billing_details import DetailsInput, billing_details, billing_details_update
from config.errors import ApiError, InvalidRequest, NotFound
from config.pagination import Cursor
from config.schema import DATE_PARAM

_error = inline_serializer(
    "BillingError",
    {
        "error": inline_serializer(
            "BillingErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)
_ERROR_TEXT = {
    400: "invalid_request (details name the fields)",
    401: "authentication_required / invalid_api_key",
    403: "forbidden (role) / workspace_suspended",
    404: "not_found (also another workspace's invoice)",
    502: "payment_provider_error (Stripe refused; nothing changed)",
    503: "service_unavailable / billing_unavailable (Retry-After)",
}


def errors(*codes: int) -> dict:
    return {code: OpenApiResponse(_error, _ERROR_TEXT[code]) for code in codes}


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"
    default_message = "The invoice PDF can't be fetched right now; try again shortly."


class InvoiceLineOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="stripe_line_id")
    plan = serializers.SlugRelatedField(source="tier", slug_field="slug", read_only=True)

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "kind",
            "description",
            "period_start",
            "period_end",
            "quantity",
            "unit_amount",
            "currency",
            "amount",
            "discount",
            "tax",
            "tax_rate",
            "proration",
            "plan",
        ]


class CreditNoteLineOutput(serializers.ModelSerializer):
    class Meta:
        model = CreditNoteLine
        fields = ["type", "description", "quantity", "unit_amount", "amount", "tax"]


class CreditNoteOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="stripe_credit_note_id")
    lines = CreditNoteLineOutput(many=True, read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "number",
            "status",
            "type",
            "reason",
            "memo",
            "currency",
            "subtotal",
            "tax",
            "total",
            "refund_amount",
            "credit_amount",
            "created_at",
            "voided_at",
            "lines",
        ]


class CustomerOutput(serializers.Serializer):
    legal_name = serializers.CharField(source="customer_legal_name")
    email = serializers.CharField(source="customer_email")
    address = serializers.JSONField(source="customer_address")
    country = serializers.CharField(source="customer_country")
    tax_id = serializers.CharField(source="customer_tax_id")
    tax_id_type = serializers.CharField(source="customer_tax_id_type")


class StatusChangeOutput(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()


class InvoiceOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="stripe_invoice_id")
    period_start = serializers.DateTimeField(source="service_period_start", allow_null=True)
    period_end = serializers.DateTimeField(source="service_period_end", allow_null=True)
    issued_at = serializers.DateTimeField(source="finalized_at", allow_null=True)
    gross = serializers.DecimalField(source="total", max_digits=14, decimal_places=2)
    payment_method = serializers.CharField(source="payment_method_summary")
    customer = CustomerOutput(source="*")
    status_history = StatusChangeOutput(many=True, read_only=True)
    lines = InvoiceLineOutput(many=True, read_only=True)
    credit_notes = CreditNoteOutput(many=True, read_only=True)
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "billing_reason",
            "currency",
            "subtotal",
            "discount",
            "net",
            "tax",
            "total",
            "gross",
            "amount_paid",
            "amount_due",
            "amount_remaining",
            "credited_total",
            "period_start",
            "period_end",
            "created_at",
            "issued_at",
            "due_date",
            "paid_at",
            "voided_at",
            "payment_method",
            "customer",
            "hosted_invoice_url",
            "pdf_url",
            "pdf_sha256",
            "status_history",
            "lines",
            "credit_notes",
        ]

    def get_pdf_url(self, obj: Invoice) -> str | None:
        if not obj.finalized_at:
            return None
        return self.context["request"].build_absolute_uri(
            reverse("invoice-pdf", args=[obj.stripe_invoice_id])
        )


class InvoicePagination(Cursor):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


def _bound(raw: str | None, name: str, *, end: bool) -> datetime | None:
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
        day = parse_date(raw) if moment is None and len(raw) == 10 else None
    except ValueError:
        moment = day = None
    if moment is not None:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if day is None:
        raise InvalidRequest(
            f"`{name}` must be a date (YYYY-MM-DD) or an ISO 8601 date-time.",
            details={name: ["Not a date."]},
        )
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def invoice_filters(request: Request) -> dict:
    """start (inclusive) / end (exclusive; a plain date = that whole day) on the
    invoice's creation date; status one of Stripe's invoice statuses."""
    start = _bound(request.query_params.get("start"), "start", end=False)
    end = _bound(request.query_params.get("end"), "end", end=True)
    status = request.query_params.get("status") or None
    if status is not None and status not in InvoiceStatus.values:
        raise InvalidRequest(
            f"`status` must be one of {', '.join(InvoiceStatus.values)}.",
            details={"status": ["Unknown status."]},
        )
    if start and end and start >= end:
        raise InvalidRequest("`start` must be before `end`.", details={"start": ["After end."]})
    return {"start": start, "end": end, "status": status}


FILTER_PARAMS = [  # `cursor` and `limit` come from the paginator
    OpenApiParameter(
        "start", DATE_PARAM, description="YYYY-MM-DD or ISO date-time (created on/after)"
    ),
    OpenApiParameter("end", DATE_PARAM, description="YYYY-MM-DD (inclusive day) or ISO date-time"),
    OpenApiParameter("status", str, enum=InvoiceStatus.values),
]


class InvoiceListApi(generics.ListAPIView):
    required_perm = Perm.VIEW_BILLING
    serializer_class = InvoiceOutput
    pagination_class = InvoicePagination
    filter_backends: list = []

    def get_queryset(self):
        return selectors.invoices_with_details(
            self.request.workspace, **invoice_filters(self.request)
        )

    @extend_schema(
        operation_id="invoices_list",
        parameters=FILTER_PARAMS,
        responses={200: InvoiceOutput(many=True), **errors(400, 401, 403)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


def _invoice(request: Request, invoice_id: str) -> Invoice:
    invoice = selectors.invoice(request.workspace, invoice_id)
    if invoice is None:
        raise NotFound("No such invoice.")
    return invoice


class InvoiceDetailApi(APIView):
    required_perm = Perm.VIEW_BILLING

    @extend_schema(
        operation_id="invoices_retrieve", responses={200: InvoiceOutput, **errors(401, 403, 404)}
    )
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = _invoice(request, invoice_id)
        return Response(InvoiceOutput(invoice, context={"request": request}).data)


def archived_pdf_response(invoice: Invoice) -> FileResponse:
    """The archived PDF; archived now if the task hasn't run yet. Shared by the
    API and the pages."""
    from billing.services.invoice_documents import PdfUnavailable, invoice_pdf_archive

    if not invoice.finalized_at:
        raise NotFound("A draft invoice has no PDF: Stripe renders one when it is finalized.")
    if not invoice.pdf_sha256:
        try:
            invoice = invoice_pdf_archive(invoice_pk=invoice.pk)
        except (PdfUnavailable, OSError) as exc:
            raise ServiceUnavailable(headers={"Retry-After": "30"}) from exc
        if not invoice.pdf_sha256:
            raise NotFound("Stripe has no PDF for this invoice.")
    response = FileResponse(
        invoice.pdf_file.open("rb"),
        content_type="application/pdf",
        as_attachment=True,
        filename=f"invoice-{invoice.number or invoice.stripe_invoice_id}.pdf",
    )
    response["X-Content-SHA256"] = invoice.pdf_sha256
    return response


class InvoicePdfApi(APIView):
    """The archived PDF (application/pdf), identical to the finalized invoice."""

    required_perm = Perm.VIEW_BILLING

    @extend_schema(
        operation_id="invoices_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY),
            **errors(401, 403, 404, 503),
        },
    )
    def get(self, request: Request, invoice_id: str):
        return archived_pdf_response(_invoice(request, invoice_id))


# --- billing details --------------------------------------------------------------------


class BillingDetailsSerializer(serializers.ModelSerializer):
    legal_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    state = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    tax_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    tax_id_type = serializers.CharField(read_only=True)
    invoice_email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    synced_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = BillingDetails
        fields = [
            "legal_name",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "state",
            "country",
            "tax_id",
            "tax_id_type",
            "invoice_email",
            "synced_at",
        ]


def details_input(data: dict) -> DetailsInput:
    names = DetailsInput.__dataclass_fields__
    return DetailsInput(**{name: data.get(name, "") or "" for name in names})


class BillingDetailsApi(APIView):
    """Owners, admins and finance: what Stripe prints on the workspace's invoices."""

    required_perm = Perm.EDIT_BILLING_DETAILS

    @extend_schema(
        operation_id="billing_details",
        responses={200: BillingDetailsSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        return Response(BillingDetailsSerializer(billing_details(request.workspace)).data)

    @extend_schema(
        operation_id="billing_details_update",
        request=BillingDetailsSerializer,
        responses={200: BillingDetailsSerializer, **errors(400, 401, 403, 502, 503)},
    )
    def put(self, request: Request) -> Response:
        incoming = BillingDetailsSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        details = billing_details_update(
            workspace=request.workspace,
            actor=request.membership,
            data=details_input(incoming.validated_data),
        )
        return Response(BillingDetailsSerializer(details).data)

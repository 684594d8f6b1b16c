"""Operator pages (staff, and the back office's "Finance" group): margin per
month with a chart and CSV/XLSX, and the reconciliation records. Read-only."""

from __future__ import annotations

import csv
import io
from datetime import date

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from billing.backoffice import FINANCE_GROUP
from billing.models import ReconciliationRun
from billing.selectors_margin import margin_report, monthly_totals
from billing.services.reconciliation import day_range
from config import clock
from usage.models import EventStatus, Reservation, UsageEvent

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_operator(user) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return user.is_staff or user.groups.filter(name=FINANCE_GROUP).exists()


def operator_only(view):
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not is_operator(request.user):
            raise Http404  # customers don't learn that operator pages exist
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _month(request: HttpRequest) -> date:
    raw = request.GET.get("month", "")
    try:
        year, month = (int(part) for part in raw.split("-"))
        return date(year, month, 1)
    except ValueError:
        return clock.now().date().replace(day=1)


@require_GET
@operator_only
def margin(request: HttpRequest) -> HttpResponse:
    month = _month(request)
    export = request.GET.get("format")
    report = margin_report(month=month)
    if export in ("csv", "xlsx"):
        return _export(report, export)
    pages = Paginator(report.workspaces, 50)
    page = pages.get_page(request.GET.get("page"))
    chart = [
        {k: (str(v) if k != "month" else f"{v:%Y-%m}") for k, v in row.items()}
        for row in monthly_totals(until=month)
    ]
    return render(
        request,
        "billing/operator/margin.html",
        {
            "report": report,
            "page": page,
            "workspaces": [row.rounded() | {"id": row.workspace_id} for row in page],
            "tiers": [row.rounded() for row in report.tiers],
            "features": [row.rounded() for row in report.features],
            "total": report.total.rounded(),
            "chart": chart,
            "month_value": f"{month:%Y-%m}",
        },
    )


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell starting like a formula is text, not a formula, in spreadsheets.
    return "'" + text if text.startswith(FORMULA_STARTS) else text


HEADER = [
    "workspace",
    "tier",
    "tokens",
    "revenue_usd",
    "upstream_cost_usd",
    "margin_usd",
    "margin_percent",
]


def _rows(report):
    for row in report.workspaces:
        r = row.rounded()
        yield [
            r["key"],
            r["tier"],
            r["tokens"],
            r["revenue"],
            r["cost"],
            r["margin"],
            r["margin_percent"],
        ]


def _export(report, kind: str) -> HttpResponse:
    name = f"margin-{report.month:%Y-%m}"
    if kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(HEADER)
        for row in _rows(report):
            writer.writerow([_cell(v) for v in row])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        import xlsxwriter

        buffer = io.BytesIO()
        book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
        sheet = book.add_worksheet("margin")
        sheet.write_row(0, 0, HEADER)
        for index, row in enumerate(_rows(report), start=1):
            sheet.write_row(index, 0, [str(v) if v is not None else "" for v in row])
        book.close()
        response = HttpResponse(
            buffer.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f'attachment; filename="{name}.{kind}"'
    return response


@require_GET
@operator_only
def reconciliation_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(ReconciliationRun.objects.all(), 31).get_page(request.GET.get("page"))
    return render(request, "billing/operator/reconciliation_list.html", {"page": page})


@require_GET
@operator_only
def reconciliation_detail(request: HttpRequest, day: str) -> HttpResponse:
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise Http404 from None
    run = get_object_or_404(ReconciliationRun, day=parsed)
    start, end = day_range(parsed)
    flagged = (
        (
            UsageEvent.objects.filter(created_at__gte=start, created_at__lt=end).filter(
                flagged=True
            )
            | UsageEvent.objects.filter(
                created_at__gte=start, created_at__lt=end, status=EventStatus.INCOMPLETE
            )
        )
        .select_related("workspace")
        .order_by("-created_at")[:200]
    )
    unsettled = Reservation.objects.filter(created_at__lt=end).order_by("created_at")[:200]
    return render(
        request,
        "billing/operator/reconciliation_detail.html",
        {"run": run, "lines": run.lines.all(), "flagged": flagged, "unsettled": unsettled},
    )

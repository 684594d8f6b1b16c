"""The operator's finance console (/backoffice/finance/): staff users in the
read-only Finance group see every workspace's invoice register, lines, credit
notes and payments, with filters and totals per period and currency; they can
export (CSV/XLSX) and build a month's close pack. Nothing here changes data:
the only POSTs queue exports."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing import selectors_finance as fin
from billing.backoffice import is_backoffice_finance
from billing.forms_exports import BackofficeFilterForm, ClosePackForm
from billing.models_exports import ExportJob
from billing.services.exports import Requester, close_pack_request, download_url, export_request
from config.errors import ApiError
from config.exports import all_kinds

PAGE_SIZE = 50
TABS = {
    "register": ("Invoice register", fin.invoices, "invoices"),
    "lines": ("Invoice lines", fin.invoice_lines, "invoice_lines"),
    "credit_notes": ("Credit notes", fin.credit_notes, "credit_notes"),
    "payments": ("Payments", fin.payments, "payments"),
}


def backoffice_page(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_backoffice_finance(request.user):
            return render(
                request,
                "billing/finance/not_allowed.html",
                {"reason": "The finance console is for the operator's finance staff."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


def _filters(data) -> tuple[BackofficeFilterForm, fin.FinanceFilters]:
    form = BackofficeFilterForm(data or None, choices=fin.filter_choices())
    start, end = form.bounds() if data else (None, None)
    return form, fin.FinanceFilters.of(start, end, form.extra_filters() if data else {})


@backoffice_page
def console(request: HttpRequest, tab: str = "register") -> HttpResponse:
    if tab not in TABS:
        tab = "register"
    title, selector, kind = TABS[tab]
    form, filters = _filters(request.GET)
    rows = selector(None, filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        f"billing/backoffice/{tab}.html",
        {
            "tab": tab,
            "tabs": [(key, label) for key, (label, _s, _k) in TABS.items()],
            "title": title,
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "export_kind": kind,
            "totals": fin.totals_by_period(None, filters) if tab == "register" else None,
            "filtered": any(request.GET.get(k) for k in ("start", "end", *fin.FILTER_KEYS)),
        },
    )


@require_POST
@backoffice_page
def export(request: HttpRequest) -> HttpResponse:
    """Export what the console shows (the same filters) as CSV or XLSX."""
    form, filters = _filters(request.POST)
    kind = request.POST.get("kind", "")
    fmt = request.POST.get("format", "xlsx")
    try:
        export_request(
            who=Requester(user=request.user),
            kind=kind,
            fmt=fmt,
            start=filters.start,
            end=filters.end,
            filters=form.extra_filters(),
        )
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Export started.")
    return redirect("backoffice:exports")


@backoffice_page
def exports(request: HttpRequest) -> HttpResponse:
    close_form = ClosePackForm(request.POST or None)
    if request.method == "POST" and close_form.is_valid():
        try:
            close_pack_request(month_start=close_form.cleaned_data["month"], user=request.user)
        except ApiError as exc:
            close_form.add_error("month", exc.message)
        else:
            messages.success(request, "The close pack is being built.")
            return redirect(reverse("backoffice:exports"))
    jobs = ExportJob.objects.backoffice().select_related("requested_by")
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/backoffice/exports.html",
        {
            "close_form": close_form,
            "page": page,
            "row_url": "backoffice:export_row",
            "tab": "exports",
            "tabs": [(key, label) for key, (label, _s, _k) in TABS.items()],
            "kinds": [k for k in all_kinds() if k.allows_backoffice()],
        },
        status=400 if close_form.is_bound and close_form.errors else 200,
    )


@backoffice_page
def export_row(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ExportJob.objects.backoffice(), pk=job_id)
    return render(
        request,
        "billing/finance/_export_row.html",
        {"job": job, "link": download_url(job), "row_url": "backoffice:export_row"},
    )

"""The customer's finance pages (owners, admins and finance members, per
accounts/roles.py): invoices with filters and PDFs, credit notes, and exports
with live progress (htmx polls the job's row)."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from accounts.roles import Perm
from billing import selectors_finance as fin
from billing.forms_exports import ExportForm, PeriodFilterForm
from billing.models_exports import ExportJob
from billing.models_invoices import CreditNote
from billing.services.exports import Requester, download_url, export_request, visible_jobs
from config.errors import ApiError
from config.exports import all_kinds

PAGE_SIZE = 25


def finance_page(perm: str):
    """Signed in, in a workspace, with `perm` — else a page that says who may."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.workspace is None:
                return redirect("accounts:workspace_switch")
            if not request.membership.can(perm):
                return render(
                    request,
                    "billing/finance/not_allowed.html",
                    {"reason": "Invoices and exports are for owners, admins and finance members."},
                    status=403,
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@finance_page(Perm.VIEW_BILLING)
def invoices(request: HttpRequest) -> HttpResponse:
    form = PeriodFilterForm(request.GET or None, statuses=fin.filter_choices()["statuses"])
    start, end = form.bounds() if request.GET else (None, None)
    status = form.cleaned_data.get("status", "") if form.is_bound and form.is_valid() else ""
    filters = fin.FinanceFilters(start=start, end=end, status=status)
    rows = fin.invoices(request.workspace, filters).prefetch_related(
        Prefetch("credit_notes", queryset=CreditNote.objects.order_by("created_at", "pk"))
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/finance/invoices.html",
        {
            "form": form,
            "page": page,
            "query": _query_without_page(request),
            "filtered": bool(start or end or status),
            "can_export": request.membership.can(Perm.EXPORT_INVOICES),
        },
    )


def _workspace_kinds(request: HttpRequest):
    return [
        k
        for k in all_kinds()
        if k.allows_workspace() and request.membership.can(k.perm)
        if set(k.formats) & {"csv", "xlsx"}
    ]


@finance_page(Perm.EXPORT_INVOICES)
def exports(request: HttpRequest) -> HttpResponse:
    kinds = _workspace_kinds(request)
    form = ExportForm(request.POST or None, kinds=kinds, initial={"kind": request.GET.get("kind")})
    if request.method == "POST" and form.is_valid():
        try:
            start, end = form.bounds()
            job = export_request(
                who=Requester(
                    user=request.user, workspace=request.workspace, membership=request.membership
                ),
                kind=form.cleaned_data["kind"],
                fmt=form.cleaned_data["format"],
                start=start,
                end=end,
            )
        except ApiError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Export started. It appears below when it is ready.")
            return redirect(f"{reverse('finance:exports')}?started={job.pk}")
    jobs = visible_jobs(
        ExportJob.objects.for_workspace(request.workspace), request.user
    ).select_related("requested_by")
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/finance/exports.html",
        {"form": form, "page": page, "row_url": "finance:export_row"},
        status=400 if form.is_bound and form.errors else 200,
    )


@finance_page(Perm.EXPORT_INVOICES)
def export_row(request: HttpRequest, job_id) -> HttpResponse:
    """One job's row, polled by htmx until it is done or failed."""
    job = get_object_or_404(
        visible_jobs(ExportJob.objects.for_workspace(request.workspace), request.user), pk=job_id
    )
    return render(
        request,
        "billing/finance/_export_row.html",
        {"job": job, "link": download_url(job), "row_url": "finance:export_row"},
    )

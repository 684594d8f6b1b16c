"""The usage dashboard page and its CSV export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.roles import Perm
from ai_features import dashboard as d


def _allowed(request: HttpRequest) -> bool:
    m = request.membership
    return m is not None and (m.can(Perm.VIEW_OWN_USAGE) or m.can(Perm.VIEW_ALL_USAGE))


def _context(request: HttpRequest):
    quota = d.quota_view(workspace=request.workspace)
    filters = d.parse_filters(
        request.GET, period_start=quota.period_start, period_end=quota.period_end
    )
    events = d.filtered_events(
        workspace=request.workspace, membership=request.membership, filters=filters
    )
    return quota, filters, events


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.workspace is None:
        return redirect("accounts:workspace_switch")
    if not _allowed(request):
        return render(
            request,
            "ai_features/not_allowed.html",
            {"reason": "Your role can't see usage."},
            status=403,
        )
    quota, filters, events = _context(request)
    everyone = d.sees_everyone(request.membership)
    groups = ["feature", "member", "key", "model"] if everyone else ["feature", "key", "model"]
    page = Paginator(d.trace(events), d.TRACE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "usage/dashboard.html",
        {
            "quota": quota,
            "filters": filters,
            "everyone": everyone,
            "totals": d.totals(events),
            "daily": d.daily(events, filters),
            "breakdowns": [(g, d.BREAKDOWNS[g][1], d.breakdown(events, g)) for g in groups],
            "page": page,
            "query": query.urlencode(),
            "choices": d.filter_choices(workspace=request.workspace, membership=request.membership),
            "statuses": ["ok", "incomplete", "error", "refused", "cancelled"],
        },
    )


@login_required
def export_csv(request: HttpRequest) -> HttpResponse:
    if request.workspace is None or not _allowed(request):
        return HttpResponse("Not allowed.", status=403, content_type="text/plain")
    _quota, filters, events = _context(request)
    # Joined, not streamed: under ASGI Django would buffer a sync iterator anyway
    # (with a warning); the large exports are jobs (billing.exports).
    response = HttpResponse("".join(d.trace_csv(events)), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{filters.start}-{filters.end}.csv"'
    )
    return response

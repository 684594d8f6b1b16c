"""Pages of the meter: API keys and usage."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Membership
from accounts.roles import Perm
from usage import dashboard, selectors, services
from usage.forms import KeyForm
from usage.limits import get_workspace_limits
from usage.models import ApiKey, CapPeriod, EventStatus


def _membership(request: HttpRequest, perm: str):
    if request.membership is None:
        raise Http404("No workspace")
    if not request.membership.can(perm):
        label = Perm(perm).label
        raise PermissionDenied(f"This page is for people who may {label[0].lower()}{label[1:]}.")
    return request.membership


def _keys_context(request: HttpRequest, form: KeyForm, secret: str | None = None) -> dict:
    keys = list(selectors.keys_for(membership=request.membership))
    used = selectors.key_used_tokens(keys=keys, limits=get_workspace_limits(request.workspace))
    for key in keys:
        key.used_tokens = used.get(key.pk, 0)
    return {"keys": keys, "form": form, "secret": secret}


@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    membership = _membership(request, Perm.MANAGE_OWN_KEYS)
    form = KeyForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        created = services.key_create(membership=membership, **form.cleaned_data)
        # Shown in this response only: never stored, never in a redirect or session.
        secret = created.secret
        form = KeyForm()
    response = render(request, "usage/keys.html", _keys_context(request, form, secret))
    response["Cache-Control"] = "no-store"
    return response


def _key(request: HttpRequest, key_id: int) -> ApiKey:
    key = selectors.keys_for(membership=request.membership).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key")
    return key


@login_required
@require_http_methods(["GET", "POST"])
def key_edit(request: HttpRequest, key_id: int) -> HttpResponse:
    _membership(request, Perm.MANAGE_OWN_KEYS)
    key = _key(request, key_id)
    initial = {f: getattr(key, f) for f in services.UPDATABLE}
    form = KeyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {f: v for f, v in form.cleaned_data.items() if v != initial[f]}
        services.key_update(key=key, changes=changes)
        messages.success(request, f"Saved “{form.cleaned_data['name']}”.")
        return redirect("usage:keys")
    return render(request, "usage/key_edit.html", {"key": key, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    _membership(request, Perm.MANAGE_OWN_KEYS)
    key = _key(request, key_id)
    if request.method == "POST":
        services.key_revoke(key=key, acting_user=request.user)
        messages.success(request, f"Revoked “{key.name}”. Programs using it now get 401.")
        return redirect("usage:keys")
    return render(request, "usage/key_revoke.html", {"key": key})


def _usage_membership(request: HttpRequest):
    m = request.membership
    if m is None:
        raise Http404("No workspace")
    if not (m.can(Perm.VIEW_OWN_USAGE) or m.can(Perm.VIEW_ALL_USAGE)):
        raise PermissionDenied("Your role in this workspace can't see usage.")
    return m


def _usage_reads(request: HttpRequest):
    membership = _usage_membership(request)
    quota = dashboard.quota_view(workspace=request.workspace)
    filters = dashboard.parse_filters(
        request.GET, period_start=quota.period_start, period_end=quota.period_end
    )
    events = dashboard.filtered_events(
        workspace=request.workspace, membership=membership, filters=filters
    )
    return membership, quota, filters, events


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    """The one usage page: quota and money for the period, tokens per day,
    breakdowns, the request trace (filters, CSV) and, for managers, member caps.
    Every figure is read from the ledger (usage/dashboard.py)."""
    if request.workspace is None:
        return redirect("accounts:workspace_switch")
    membership, quota, filters, events = _usage_reads(request)
    everyone = dashboard.sees_everyone(membership)
    groups = ["feature", "member", "key", "model"] if everyone else ["feature", "key", "model"]
    page = Paginator(dashboard.trace(events), dashboard.TRACE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    caps = (
        selectors.member_caps(workspace=request.workspace)
        if membership.can(Perm.MANAGE_MEMBERS)
        else None
    )
    return render(
        request,
        "usage/usage.html",
        {
            "quota": quota,
            "filters": filters,
            "everyone": everyone,
            "totals": dashboard.totals(events),
            "daily": dashboard.daily(events, filters),
            "breakdowns": [
                (g, dashboard.BREAKDOWNS[g][1], dashboard.breakdown(events, g)) for g in groups
            ],
            "page": page,
            "query": query.urlencode(),
            "choices": dashboard.filter_choices(workspace=request.workspace, membership=membership),
            "statuses": [s for s, _label in EventStatus.choices],
            "caps": caps,
            "cap_periods": CapPeriod.choices,
            "can_manage_billing": membership.can(Perm.MANAGE_BILLING),
            "can_use_features": membership.can(Perm.USE_FEATURES),
        },
    )


@login_required
def usage_csv(request: HttpRequest) -> HttpResponse:
    if request.workspace is None:
        return redirect("accounts:workspace_switch")
    _member, _quota, filters, events = _usage_reads(request)
    response = StreamingHttpResponse(dashboard.trace_csv(events), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{filters.start}-{filters.end}.csv"'
    )
    return response


@login_required
@require_http_methods(["POST"])
def member_cap(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Owners and admins set (or clear) a member's token cap."""
    _membership(request, Perm.MANAGE_MEMBERS)
    target = Membership.objects.for_workspace(request.workspace).filter(pk=membership_id).first()
    if target is None:
        raise Http404("No such member")
    raw = request.POST.get("token_cap", "").strip()
    period = request.POST.get("cap_period", CapPeriod.MONTH)
    if (
        raw and not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63)
    ) or period not in CapPeriod.values:
        messages.error(request, "A cap is a whole number of tokens above zero (or empty for none).")
        return redirect("usage:usage")
    services.member_cap_set(
        membership=target, token_cap=int(raw) if raw else None, cap_period=period
    )
    who = target.user.email
    messages.success(request, f"Cap for {who} saved." if raw else f"Cap for {who} removed.")
    return redirect("usage:usage")

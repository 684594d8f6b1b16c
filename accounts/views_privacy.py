"""Pages for privacy: the public privacy statement, a person's "Privacy & data"
(export, email preferences, sessions, delete account) and an owner's workspace
privacy (MFA rule, retention, export, audit log, delete workspace)."""

from __future__ import annotations

from datetime import date

from allauth.account.decorators import reauthentication_required
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import audit, services_privacy
from accounts.models_privacy import WorkspacePolicy
from accounts.notifications import preferences_for
from accounts.roles import Perm
from accounts.views import workspace_required
from config import clock
from config.errors import ApiError

AUDIT_PER_PAGE = 50


class NotificationForm(forms.Form):
    usage_alerts = forms.BooleanField(required=False, label="Usage alerts (50/80/100 % of quota)")
    invoices = forms.BooleanField(required=False, label="Invoices and receipts")
    product = forms.BooleanField(required=False, label="Product news")


class DeleteAccountForm(forms.Form):
    confirmation = forms.CharField(label="Type your email address to confirm", max_length=254)


class DeleteWorkspaceForm(forms.Form):
    confirmation = forms.CharField(label="Type the workspace's name to confirm", max_length=100)
    when = forms.ChoiceField(
        choices=[
            ("period_end", "Cancel the subscription at the end of the paid period"),
            ("now", "Cancel now, with a final invoice"),
        ],
        initial="period_end",
        widget=forms.RadioSelect,
        label="The subscription",
    )


class PolicyForm(forms.Form):
    require_mfa = forms.BooleanField(
        required=False, label="Require two-factor authentication for every member"
    )
    content_retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=services_privacy.MAX_RETENTION_DAYS,
        label="Delete prompts and answers after (days)",
        help_text="Chats, summaries, extractions and documents. Blank: keep until deleted.",
    )


class AuditFilterForm(forms.Form):
    actor = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Who")
    group = forms.ChoiceField(required=False, label="What")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        people = audit.audit_actors(workspace=workspace)
        self.fields["actor"].choices = [("", "Anyone")] + [(u.pk, u.email) for u in people]
        self.fields["group"].choices = [("", "Anything")] + [(g, g) for g in audit.ACTION_GROUPS]

    def filters(self) -> audit.AuditFilters:
        if not self.is_valid():
            return audit.AuditFilters()
        data = self.cleaned_data
        return audit.AuditFilters(
            actor_id=data.get("actor"),
            group=data.get("group") or "",
            since=data.get("since"),
            until=data.get("until"),
        )


# --- public ------------------------------------------------------------------------------


def privacy_statement(request: HttpRequest) -> HttpResponse:
    from accounts.privacy_statement import retention_facts

    return render(request, "accounts/privacy_statement.html", {"facts": retention_facts()})


# --- a person's own data --------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def privacy_settings(request: HttpRequest) -> HttpResponse:
    pref = preferences_for(request.user)
    initial = {
        "usage_alerts": pref.usage_alerts,
        "invoices": pref.invoices,
        "product": pref.product,
    }
    form = NotificationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services_privacy.notification_preferences_update(user=request.user, **form.cleaned_data)
        messages.success(request, "Email preferences saved.")
        return redirect("accounts:privacy_settings")
    context = {
        "form": form,
        "blocking": services_privacy.workspaces_blocking_deletion(user=request.user),
    }
    return render(request, "accounts/privacy_settings.html", context)


@login_required
@reauthentication_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    """Re-authenticated (allauth's reauthenticate flow) within the last minutes."""
    blocking = services_privacy.workspaces_blocking_deletion(user=request.user)
    form = DeleteAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services_privacy.account_delete(
                user=request.user, confirmation=form.cleaned_data["confirmation"]
            )
        except ApiError as error:
            messages.error(request, error.message)
        else:
            logout(request)
            messages.success(request, "Your account was deleted. We sent a confirmation email.")
            return redirect("/")
    return render(request, "accounts/account_delete.html", {"form": form, "blocking": blocking})


# --- a workspace's privacy -----------------------------------------------------------------


@workspace_required
@require_http_methods(["GET", "POST"])
def workspace_privacy(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    policy = services_privacy.policy_for(request.workspace)
    can_manage = membership.can(Perm.MANAGE_SECURITY)
    form = PolicyForm(
        request.POST or None,
        initial={
            "require_mfa": policy.require_mfa,
            "content_retention_days": policy.content_retention_days,
        },
    )
    if request.method == "POST" and can_manage and form.is_valid():
        try:
            services_privacy.policy_update(actor=membership, **form.cleaned_data)
        except ApiError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Workspace privacy settings saved.")
            return redirect("accounts:workspace_privacy")
    context = {
        "form": form,
        "policy": policy,
        "can_manage": can_manage,
        "can_export": membership.can(Perm.EXPORT_WORKSPACE_DATA),
        "can_delete": membership.can(Perm.DELETE_WORKSPACE),
        "can_audit": membership.can(Perm.VIEW_AUDIT_LOG),
        "operator_retention_days": settings.TOLLGATE_CONTENT_RETENTION_DAYS,
    }
    return render(request, "accounts/workspace_privacy.html", context)


def _owner_only(request: HttpRequest, perm: str) -> HttpResponse | None:
    if request.membership.can(perm):
        return None
    return render(
        request,
        "accounts/confirm_denied.html",
        {"message": "Only the workspace's owners can do this."},
        status=403,
    )


@workspace_required
@require_http_methods(["GET", "POST"])
def workspace_delete(request: HttpRequest) -> HttpResponse:
    denied = _owner_only(request, Perm.DELETE_WORKSPACE)
    if denied:
        return denied
    workspace = request.workspace
    policy = services_privacy.policy_for(workspace)
    form = DeleteWorkspaceForm(request.POST or None)
    if request.method == "POST" and not policy.deletion_pending and form.is_valid():
        try:
            policy = services_privacy.workspace_deletion_schedule(
                actor=request.membership,
                confirmation=form.cleaned_data["confirmation"],
                cancel_now=form.cleaned_data["when"] == "now",
            )
        except ApiError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                f"“{workspace.name}” will be deleted on {policy.deletion_due_at:%Y-%m-%d}. "
                "You can undo this until then.",
            )
            return redirect("accounts:workspace_privacy")
    context = {
        "form": form,
        "policy": policy,
        "closure": services_privacy.closure_summary(workspace=workspace),
        "grace_days": settings.TOLLGATE_WORKSPACE_DELETION_GRACE_DAYS,
        "retention_years": settings.TOLLGATE_LEGAL_RETENTION_YEARS,
    }
    return render(request, "accounts/workspace_delete.html", context)


@workspace_required
@require_POST
def workspace_delete_undo(request: HttpRequest) -> HttpResponse:
    try:
        services_privacy.workspace_deletion_undo(actor=request.membership)
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The deletion is cancelled. Nothing was deleted.")
    return redirect("accounts:workspace_privacy")


# --- the audit log -----------------------------------------------------------------------------


@workspace_required
def audit_log(request: HttpRequest) -> HttpResponse:
    denied = _owner_only(request, Perm.VIEW_AUDIT_LOG)
    if denied:
        return denied
    form = AuditFilterForm(request.GET or None, workspace=request.workspace)
    events = audit.audit_log(workspace=request.workspace, filters=form.filters())
    page = Paginator(events, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "events": page, "query": query.urlencode()}
    return render(request, "accounts/audit_log.html", context)


@workspace_required
def audit_log_csv(request: HttpRequest) -> HttpResponse:
    denied = _owner_only(request, Perm.VIEW_AUDIT_LOG)
    if denied:
        return denied
    form = AuditFilterForm(request.GET or None, workspace=request.workspace)
    events = audit.audit_log(workspace=request.workspace, filters=form.filters())
    audit.record(
        workspace=request.workspace,
        actor=request.user,
        action="export.audit_log",
        target="csv",
    )
    response = StreamingHttpResponse(audit.audit_csv_rows(events), content_type="text/csv")
    stamp = date.isoformat(clock.now().date())
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


__all__ = ["WorkspacePolicy"]

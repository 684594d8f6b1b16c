"""Operator admin: people, workspaces, memberships, invitations and the audit
trail, with search, filters and the suspend / unsuspend actions (which ask for a
reason on an intermediate page and go through accounts.services)."""

from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count, Q
from django.template.response import TemplateResponse

from accounts import services
from accounts.forms import SuspendForm
from accounts.models import AuditEvent, Invitation, Membership, User, Workspace
from config import clock


def _suspend_action(request, queryset, *, suspend, label: str):
    """Shared body of the suspend actions: ask for a reason, then apply."""
    form = SuspendForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        for obj in queryset:
            suspend(obj, form.cleaned_data["reason"], request.user)
        count = queryset.count()
        messages.success(request, f"Suspended {count} {label}{'' if count == 1 else 's'}.")
        return None
    return TemplateResponse(
        request,
        "admin/accounts/suspend.html",
        {
            **admin.site.each_context(request),
            "title": f"Suspend {label}s",
            "objects": queryset,
            "form": form,
            "action": request.POST.get("action"),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "opts": queryset.model._meta,
            "label": label,
        },
    )


def _save_with_suspension(obj, form, *, save, suspend, unsuspend) -> None:
    """Ticking "suspended" in a change form goes through the same service as the
    action (timestamp + audit row), not a bare field write."""
    changed = "is_suspended" in form.changed_data
    wanted, reason = obj.is_suspended, obj.suspended_reason
    if changed:
        obj.is_suspended = not wanted  # let the service make the change
    save()
    if changed:
        if wanted:
            suspend(reason)
        else:
            unsuspend()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user", "workspace"]
    fields = ["user", "workspace", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "workspace_count", "is_staff", "is_suspended", "date_joined"]
    list_filter = ["is_suspended", "is_staff", "is_superuser", "is_active", "date_joined"]
    search_fields = ["email", "name", "memberships__workspace__name"]
    readonly_fields = ["last_login", "date_joined", "suspended_at"]
    inlines = [MembershipInline]
    actions = ["suspend_users", "unsuspend_users"]
    fieldsets = (
        (None, {"fields": ("email", "password", "name")}),
        ("Suspension", {"fields": ("is_suspended", "suspended_reason", "suspended_at")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_workspaces=Count("memberships"))

    def save_model(self, request, obj, form, change):
        _save_with_suspension(
            obj,
            form,
            save=lambda: super(UserAdmin, self).save_model(request, obj, form, change),
            suspend=lambda reason: services.user_suspend(
                user=obj, reason=reason, operator=request.user
            ),
            unsuspend=lambda: services.user_unsuspend(user=obj, operator=request.user),
        )

    @admin.display(description="Workspaces", ordering="_workspaces")
    def workspace_count(self, obj) -> int:
        return obj._workspaces

    @admin.action(description="Suspend selected users (asks for a reason)")
    def suspend_users(self, request, queryset):
        return _suspend_action(
            request,
            queryset,
            suspend=lambda u, reason, op: services.user_suspend(user=u, reason=reason, operator=op),
            label="user",
        )

    @admin.action(description="Unsuspend selected users")
    def unsuspend_users(self, request, queryset):
        for user in queryset:
            services.user_unsuspend(user=user, operator=request.user)
        messages.success(request, f"Unsuspended {queryset.count()} user(s).")


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "member_count", "owners", "created_at", "is_suspended"]
    list_filter = ["is_suspended", "created_at"]
    search_fields = ["name", "memberships__user__email"]
    readonly_fields = ["created_at", "created_by", "suspended_at"]
    inlines = [MembershipInline]
    actions = ["suspend_workspaces", "unsuspend_workspaces"]
    fieldsets = (
        (None, {"fields": ("name", "created_by", "created_at")}),
        ("Suspension", {"fields": ("is_suspended", "suspended_reason", "suspended_at")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_members=Count("memberships", distinct=True))
            .prefetch_related("memberships__user")
        )

    def save_model(self, request, obj, form, change):
        _save_with_suspension(
            obj,
            form,
            save=lambda: super(WorkspaceAdmin, self).save_model(request, obj, form, change),
            suspend=lambda reason: services.workspace_suspend(
                workspace=obj, reason=reason, operator=request.user
            ),
            unsuspend=lambda: services.workspace_unsuspend(workspace=obj, operator=request.user),
        )

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj) -> int:
        return obj._members

    @admin.display(description="Owners")
    def owners(self, obj) -> str:
        return ", ".join(m.user.email for m in obj.memberships.all() if m.role == "owner")

    @admin.action(description="Suspend selected workspaces (asks for a reason)")
    def suspend_workspaces(self, request, queryset):
        return _suspend_action(
            request,
            queryset,
            suspend=lambda w, reason, op: services.workspace_suspend(
                workspace=w, reason=reason, operator=op
            ),
            label="workspace",
        )

    @admin.action(description="Unsuspend selected workspaces")
    def unsuspend_workspaces(self, request, queryset):
        for workspace in queryset:
            services.workspace_unsuspend(workspace=workspace, operator=request.user)
        messages.success(request, f"Unsuspended {queryset.count()} workspace(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "created_at"]
    search_fields = ["user__email", "workspace__name"]
    autocomplete_fields = ["user", "workspace"]
    list_select_related = ["user", "workspace"]


class InvitationStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(s, s.capitalize()) for s in ("pending", "expired", "accepted", "revoked")]

    def queryset(self, request, queryset):
        now = clock.now()
        open_ = Q(accepted_at__isnull=True, revoked_at__isnull=True)
        filters = {
            "pending": open_ & Q(expires_at__gt=now),
            "expired": open_ & Q(expires_at__lte=now),
            "accepted": Q(accepted_at__isnull=False),
            "revoked": Q(accepted_at__isnull=True, revoked_at__isnull=False),
        }
        return queryset.filter(filters[self.value()]) if self.value() in filters else queryset


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "workspace",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
    ]
    list_filter = [InvitationStatusFilter, "role", "created_at"]
    search_fields = ["email", "workspace__name", "invited_by__email"]
    list_select_related = ["workspace", "invited_by"]
    # The token exists only in the email; the hash is useless to an operator.
    exclude = ["token_hash"]
    readonly_fields = [
        "workspace",
        "email",
        "role",
        "invited_by",
        "created_at",
        "sent_at",
        "accepted_at",
        "accepted_by",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # invitations are sent from the members page, with an email

    @admin.display(description="Status")
    def status(self, obj) -> str:
        return obj.status

    @admin.action(description="Revoke selected invitations")
    def revoke(self, request, queryset):
        count = queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        messages.success(request, f"Revoked {count} invitation(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "target", "actor", "workspace"]
    list_filter = ["action", "created_at"]
    search_fields = ["target", "actor__email", "workspace__name", "action"]
    list_select_related = ["actor", "workspace"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# Operators sign in through the customers' login (allauth: its rate limits,
# MFA and suspension checks); /admin/login/ only redirects there.
admin.site.login = secure_admin_login(admin.site.login)

"""Admin for operator economics: settings, reconciliation records (with the
day's flagged events one click away), dunning states, operator notices, and
this month's tokens / upstream cost / revenue on the workspace list."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db.models import DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import Workspace
from billing.models import (
    DunningState,
    EconomicsSettings,
    OperatorNotice,
    ReconciliationLine,
    ReconciliationRun,
)
from billing.selectors_margin import _lines_in, month_bounds
from config import clock
from usage.models import UsageRollup


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EconomicsSettings)
class EconomicsSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "drift_threshold_percent",
        "upstream_monthly_budget",
        "backstop_policy",
        "backstop_tripped_month",
        "past_due_overage_grace_days",
        "dunning_reminder_days",
    ]
    readonly_fields = ["backstop_tripped_month", "updated_at"]

    def has_add_permission(self, request):
        return not EconomicsSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


class ReconciliationLineInline(admin.TabularInline):
    model = ReconciliationLine
    extra = 0
    can_delete = False
    fields = [
        "model",
        "upstream_scope",
        "our_requests",
        "their_requests",
        "our_input_tokens",
        "their_input_tokens",
        "our_cached_input_tokens",
        "their_cached_input_tokens",
        "our_output_tokens",
        "their_output_tokens",
        "ledger_cost",
        "upstream_cost",
        "drift_percent",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(_ReadOnly):
    list_display = [
        "day",
        "status",
        "max_drift_percent",
        "our_requests",
        "their_requests",
        "our_tokens",
        "their_tokens",
        "upstream_cost",
        "flagged_events",
        "alerted_at",
        "details",
    ]
    list_filter = ["status"]
    date_hierarchy = "day"
    inlines = [ReconciliationLineInline]

    @admin.display(description="Flagged events & lines")
    def details(self, obj: ReconciliationRun):
        url = reverse("billing:operator_reconciliation_day", args=[obj.day.isoformat()])
        return format_html('<a href="{}">open</a>', url)

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff


@admin.register(DunningState)
class DunningStateAdmin(_ReadOnly):
    list_display = ["workspace", "status", "past_due_since", "refused", "updated_at"]
    list_filter = ["status", "refused"]


@admin.register(OperatorNotice)
class OperatorNoticeAdmin(_ReadOnly):
    list_display = ["kind", "key", "created_at"]
    list_filter = ["kind"]


# --- The workspace list: this month's economics, from rollups and invoices ----------

_MONEY = DecimalField(max_digits=20, decimal_places=8)


def _month_subqueries():
    start, end = month_bounds(clock.now().date())
    rollups = UsageRollup.objects.filter(
        workspace_id=OuterRef("pk"), day__gte=start, day__lt=end
    ).order_by()
    lines = _lines_in(start, end).filter(invoice__workspace_id=OuterRef("pk"))
    tokens = rollups.values("workspace_id").annotate(s=Sum("total_tokens")).values("s")
    cost = rollups.values("workspace_id").annotate(s=Sum("cost")).values("s")
    revenue = (
        lines.values("invoice__workspace_id")
        .annotate(s=Sum(F("amount") - F("discount")))
        .values("s")
    )
    return {
        "_month_tokens": Coalesce(Subquery(tokens), Value(0)),
        "_month_cost": Coalesce(Subquery(cost, output_field=_MONEY), Value(Decimal(0))),
        "_month_revenue": Coalesce(Subquery(revenue, output_field=_MONEY), Value(Decimal(0))),
    }


def _extend_workspace_admin() -> None:
    base = type(admin.site._registry[Workspace])

    class WorkspaceEconomicsAdmin(base):  # type: ignore[valid-type,misc]
        list_display = [*base.list_display, "month_tokens", "month_upstream_cost", "month_revenue"]

        def get_queryset(self, request):
            return super().get_queryset(request).annotate(**_month_subqueries())

        @admin.display(description="Tokens this month", ordering="_month_tokens")
        def month_tokens(self, obj):
            return f"{obj._month_tokens:,}"

        @admin.display(description="Upstream cost (USD)", ordering="_month_cost")
        def month_upstream_cost(self, obj):
            return f"{obj._month_cost:.2f}"

        @admin.display(description="Revenue (USD)", ordering="_month_revenue")
        def month_revenue(self, obj):
            return f"{obj._month_revenue:.2f}"

    admin.site.unregister(Workspace)
    admin.site.register(Workspace, WorkspaceEconomicsAdmin)


_extend_workspace_admin()

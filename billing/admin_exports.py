"""Export jobs in admin: read-only (they are made by the API, pages and beat)."""

from django.contrib import admin

from billing.models_exports import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "format", "workspace", "status", "progress", "rows"]
    list_filter = ["status", "kind", "format"]
    search_fields = ["id", "workspace__name", "requested_by__email"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

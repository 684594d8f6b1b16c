"""Operator screens for the meter: the rate card, keys, caps, the ledger
(read-only: append-only in code and on screen), counters and moderation."""

from __future__ import annotations

from django.contrib import admin, messages

from config import clock
from usage import services
from usage.models import (
    ApiKey,
    MemberCap,
    ModerationLog,
    ModerationSettings,
    RateCard,
    UsageCounter,
    UsageEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RateCard)
class RateCardAdmin(admin.ModelAdmin):
    list_display = (
        "model",
        "input_per_million",
        "cached_input_per_million",
        "output_per_million",
        "effective_from",
    )
    list_filter = ("model",)
    search_fields = ("model",)
    date_hierarchy = "effective_from"

    def get_readonly_fields(self, request, obj=None):
        # A price that has charged events is history: add a new row instead.
        if (
            obj is not None
            and UsageEvent.objects.filter(
                model=obj.model, created_at__gte=obj.effective_from
            ).exists()
        ):
            return ("model", "input_per_million", "cached_input_per_million",
                    "output_per_million", "effective_from")  # fmt: skip
        return ()


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "workspace", "created_by", "token_cap", "cap_period",
                    "rpm_limit", "tpm_limit", "status", "last_used_at", "created_at")  # fmt: skip
    list_filter = ("cap_period", "revoked_at")
    search_fields = ("name", "prefix", "workspace__name", "created_by__email")
    readonly_fields = ("prefix", "key_hash", "workspace", "membership", "created_by",
                       "last_used_at", "created_at", "revoked_at")  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # keys are created by members (the secret is shown to them once)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the ledger refers to keys

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.key_revoke(key=key, acting_user=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(MemberCap)
class MemberCapAdmin(admin.ModelAdmin):
    list_display = ("membership", "token_cap", "cap_period", "updated_at")
    search_fields = ("membership__user__email", "membership__workspace__name")
    raw_id_fields = ("membership",)


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "request_id", "workspace", "user", "feature", "model",
                    "total_tokens", "cost", "latency_ms", "status", "flagged")  # fmt: skip
    list_filter = ("status", "flagged", "feature", "model", "streamed")
    search_fields = ("request_id", "upstream_request_id", "workspace__name", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("workspace", "user")


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyAdmin):
    list_display = ("scope", "scope_id", "workspace", "period_start", "used", "reserved")
    list_filter = ("scope",)
    search_fields = ("workspace__name",)


@admin.register(ModerationLog)
class ModerationLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "flagged", "categories", "user", "workspace", "request_id",
                    "excerpt", "reviewed_at")  # fmt: skip
    list_filter = ("flagged", ("reviewed_at", admin.EmptyFieldListFilter))
    search_fields = ("request_id", "user__email", "workspace__name", "excerpt")
    readonly_fields = ("workspace", "user", "request_id", "flagged", "categories", "excerpt",
                       "model", "created_at", "reviewed_at", "reviewed_by")  # fmt: skip
    actions = ["mark_reviewed", "suspend_people"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Mark as reviewed")
    def mark_reviewed(self, request, queryset):
        count = queryset.filter(reviewed_at__isnull=True).update(
            reviewed_at=clock.now(), reviewed_by=request.user
        )
        self.message_user(request, f"Marked {count} flag(s) reviewed.", messages.SUCCESS)

    @admin.action(description="Suspend the people who sent these")
    def suspend_people(self, request, queryset):
        people = {log.user for log in queryset.select_related("user") if log.user}
        for user in people:
            if not user.is_suspended:
                user.is_suspended = True
                user.suspended_at = clock.now()
                user.suspended_reason = "Suspended by an operator after a moderation review."
                user.save(update_fields=["is_suspended", "suspended_at", "suspended_reason"])
        self.message_user(request, f"Suspended {len(people)} person(s).", messages.WARNING)


@admin.register(ModerationSettings)
class ModerationSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "enabled", "suspend_after_flags", "log_retention_days")

    def has_add_permission(self, request) -> bool:
        return not ModerationSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

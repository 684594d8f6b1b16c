"""Operator views of what customers made with the features. Content is
customers' data: listed for support, read-only, never edited here."""

from django.contrib import admin

from ai_features.models_features import Conversation, Document, Extraction, Message


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "status", "content", "input_tokens", "output_tokens", "request_id")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("title", "owner", "workspace", "updated_at")
    list_filter = ("updated_at",)
    search_fields = ("title", "owner__email", "workspace__name")
    list_select_related = ("owner", "workspace")
    inlines = [MessageInline]


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "size", "pages", "uploaded_by", "workspace", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("name", "uploaded_by__email", "workspace__name")
    list_select_related = ("uploaded_by", "workspace")
    exclude = ("text",)


@admin.register(Extraction)
class ExtractionAdmin(ReadOnlyAdmin):
    list_display = ("pk", "user", "workspace", "model", "attempts", "request_id", "created_at")
    list_filter = ("model", "attempts", "created_at")
    search_fields = ("request_id", "user__email", "workspace__name")
    list_select_related = ("user", "workspace")

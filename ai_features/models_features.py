"""Data for extract, chat and documents. Every row belongs to a workspace and a
person; reads go through `.for_workspace(ws)` and, for private things
(conversations, documents, runs), the owner as well."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.tenancy import WorkspaceScopedManager
from config import clock


class Document(models.Model):
    """An uploaded file's extracted text. The file itself is not kept."""

    class Kind(models.TextChoices):
        TXT = "txt", "Plain text"
        MD = "md", "Markdown"
        PDF = "pdf", "PDF"
        DOCX = "docx", "Word document"

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="documents"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents"
    )
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    size = models.PositiveIntegerField(help_text="bytes uploaded")
    pages = models.PositiveIntegerField(null=True, blank=True)
    text = models.TextField()
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "uploaded_by", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def char_count(self) -> int:
        return len(self.text)


class Conversation(models.Model):
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="conversations"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now, db_index=True)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "You"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Being written"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    model = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=100, blank=True, db_index=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    # Earlier messages of the conversation not sent upstream (context budget).
    omitted_messages = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def usage_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


class Extraction(models.Model):
    """One extract run, kept for the person's history and downloads."""

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="extractions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extractions"
    )
    document = models.ForeignKey(
        Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="extractions"
    )
    source_name = models.CharField(max_length=255, blank=True)
    source_preview = models.CharField(max_length=200, blank=True)
    fields = models.JSONField()
    data = models.JSONField()
    model = models.CharField(max_length=100)
    request_id = models.CharField(max_length=100, db_index=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "user", "-created_at"])]

    def __str__(self) -> str:
        return f"extraction {self.pk}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def usage_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }

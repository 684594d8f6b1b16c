from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from accounts.tenancy import WorkspaceScopedManager
from config import clock


class Summary(models.Model):
    """A stored summarize result: what the customer paid for, readable again
    through `GET /api/v1/summaries/{id}` by its own workspace only."""

    class Length(models.TextChoices):
        SHORT = "short"
        MEDIUM = "medium"
        LONG = "long"

    class Format(models.TextChoices):
        PARAGRAPH = "paragraph"
        BULLETS = "bullets"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="summaries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "usage.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    request_id = models.CharField(max_length=64)  # unique: see Meta.constraints
    source = models.CharField(max_length=255, blank=True, help_text="Uploaded file name, if any")
    input_chars = models.PositiveIntegerField(default=0)
    length = models.CharField(max_length=10, choices=Length.choices)
    format = models.CharField(max_length=10, choices=Format.choices)
    summary = models.TextField()
    model = models.CharField(max_length=100)
    usage = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=clock.now)

    objects = WorkspaceScopedManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "summaries"
        # A constraint, not `unique=True`: no second (LIKE-pattern) index to
        # write on every summarize call.
        constraints = [
            models.UniqueConstraint(fields=["request_id"], name="summary_request_id_uniq")
        ]

    def __str__(self) -> str:
        return f"Summary {self.id}"

    def as_api(self, *, full: bool = False) -> dict:
        body = {
            "id": str(self.id),
            "summary": self.summary,
            "model": self.model,
            "usage": self.usage,
        }
        if full:
            body |= {
                "length": self.length,
                "format": self.format,
                "source": self.source,
                "created_at": self.created_at.isoformat(),
            }
        return body


from ai_features.models_features import Conversation, Document, Extraction, Message  # noqa: E402, F401

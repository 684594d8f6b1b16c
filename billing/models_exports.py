"""Export jobs: one row per requested export (API, pages, the finance console,
the monthly close pack). The file is kept until `expires_at`, then deleted by
`billing.tasks.delete_expired_exports`."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from accounts.models import Workspace
from accounts.tenancy import WorkspaceQuerySet
from config import clock


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJobQuerySet(WorkspaceQuerySet):
    def backoffice(self) -> ExportJobQuerySet:
        """The operator's exports across all workspaces (no tenant)."""
        return self.filter(workspace__isnull=True)


class ExportJob(models.Model):
    # A random id: it appears in URLs and must not reveal how many exports exist.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null for back-office exports (all workspaces, the finance console).
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=40)
    format = models.CharField(max_length=10)
    # The half-open period [start, end) in UTC; null: unbounded.
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", max_length=300, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = models.Manager.from_queryset(ExportJobQuerySet)()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="export_ws_recent")]

    def __str__(self) -> str:
        return f"{self.kind}.{self.format} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ExportStatus.DONE, ExportStatus.FAILED)

    @property
    def is_downloadable(self) -> bool:
        return (
            self.status == ExportStatus.DONE
            and bool(self.file)
            and self.expires_at is not None
            and self.expires_at > clock.now()
        )

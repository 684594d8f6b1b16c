"""Thin Celery tasks for privacy housekeeping (beat: config/settings/base.py)."""

from __future__ import annotations

from celery import shared_task

from accounts import services_privacy


@shared_task
def enforce_retention() -> int:
    return services_privacy.retention_enforce()


@shared_task
def delete_due_workspaces() -> int:
    erased = services_privacy.workspaces_erase_due()
    services_privacy.workspaces_purge_retained()
    return erased

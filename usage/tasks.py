"""Thin Celery tasks: housekeeping of the meter."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from config import clock
from usage.journal import replay as replay_journal
from usage.models import IdempotencyRecord, ModerationLog, ModerationSettings
from usage.reservations import release_stale


@shared_task
def purge_moderation_logs() -> int:
    """Blank the excerpts (what the person wrote) past the operator's retention;
    the flag, categories and who/when stay for abuse handling."""
    days = ModerationSettings.current().log_retention_days
    cutoff = clock.now() - timedelta(days=max(days, 1))
    return (
        ModerationLog.objects.filter(created_at__lt=cutoff).exclude(excerpt="").update(excerpt="")
    )


@shared_task
def release_stale_reservations() -> dict[str, int]:
    """Recovery, in this order: journaled settles first (their exact usage wins),
    then reservations that lost their request (charged if sent, else freed)."""
    replayed = replay_journal()
    cutoff = clock.now() - timedelta(minutes=settings.TOLLGATE_STALE_RESERVATION_MINUTES)
    return {**replayed, **release_stale(older_than=cutoff)}


@shared_task
def replay_meter_journal() -> dict[str, int]:
    return replay_journal()


@shared_task
def purge_idempotency_records() -> int:
    cutoff = clock.now() - timedelta(hours=settings.TOLLGATE_IDEMPOTENCY_TTL_HOURS)
    return IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()[0]

"""The meter's entries in the personal-data registry (accounts/privacy.py).

Kept: the ledger (UsageEvent) and its rollup — usage stays for billing and
reconciliation; their user foreign key points at the deleted person's nameless
tombstone. Deleted or blanked: what the person wrote (moderation excerpts,
stored idempotent answers); keys are revoked and renamed."""

from __future__ import annotations

from django.db import models

from accounts import privacy
from accounts.privacy import Rows, Subject
from config import clock
from usage.apikeys import forget_keys
from usage.models import (
    ApiKey,
    IdempotencyRecord,
    ModerationLog,
    Reservation,
    UsageCounter,
    UsageEvent,
    UsageRollup,
)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _event_rows(events) -> Rows:
    return [
        {
            "request_id": e.request_id,
            "time": _iso(e.created_at),
            "workspace_id": e.workspace_id,
            "feature": e.feature,
            "model": e.model,
            "status": e.status,
            "input_tokens": e.input_tokens,
            "cached_input_tokens": e.cached_input_tokens,
            "output_tokens": e.output_tokens,
            "total_tokens": e.total_tokens,
            "cost_usd": str(e.cost),
            "api_key_prefix": e.api_key.prefix if e.api_key else None,
        }
        for e in events.select_related("api_key").order_by("created_at", "pk").iterator(2000)
    ]


def _key_rows(keys) -> Rows:
    return [
        {
            "name": k.name,
            "prefix": k.prefix,
            "workspace_id": k.workspace_id,
            "status": k.status,
            "created_at": _iso(k.created_at),
            "revoked_at": _iso(k.revoked_at),
        }
        for k in keys
    ]


def export(subject: Subject) -> dict[str, Rows]:
    if subject.user is not None:
        return {
            "usage_events": _event_rows(UsageEvent.objects.filter(user=subject.user)),
            "api_keys": _key_rows(ApiKey.objects.filter(created_by=subject.user)),
        }
    ws = subject.workspace
    return {
        "usage_events": _event_rows(UsageEvent.objects.filter(workspace=ws)),
        "api_keys": _key_rows(ApiKey.objects.filter(workspace=ws)),
    }


def _retire_keys(keys) -> None:
    """Revoke and rename (a key's name often says whose laptop it was)."""
    now = clock.now()
    hashes = list(keys.values_list("key_hash", flat=True))
    for key in keys:
        key.revoked_at = key.revoked_at or now
        key.name = f"key {key.prefix}"
        key.save(update_fields=["revoked_at", "name"])
    forget_keys(hashes)


def erase_user(user, pseudonym: str) -> None:
    _retire_keys(ApiKey.objects.filter(created_by=user))
    ModerationLog.objects.filter(user=user).exclude(excerpt="").update(excerpt="")
    request_ids = UsageEvent.objects.filter(user=user).values("request_id")
    IdempotencyRecord.objects.filter(request_id__in=request_ids).delete()


def erase_workspace(workspace, pseudonym: str) -> None:
    _retire_keys(ApiKey.objects.filter(workspace=workspace))
    ModerationLog.objects.filter(workspace=workspace).update(excerpt="", user=None)
    IdempotencyRecord.objects.filter(workspace=workspace).delete()
    Reservation.objects.filter(workspace=workspace).delete()


def purge_content(workspace, cutoff) -> int:
    # Stored idempotent responses hold answers (they also expire within a day).
    return IdempotencyRecord.objects.filter(workspace=workspace, created_at__lt=cutoff).delete()[0]


def purge_retained(workspace) -> None:
    # The legal retention period is over: the append-only ledger may go, and
    # only here, so the guard is bypassed deliberately with a plain QuerySet.
    models.QuerySet(UsageEvent).filter(workspace=workspace).delete()
    UsageRollup.objects.filter(workspace=workspace).delete()
    UsageCounter.objects.filter(workspace=workspace).delete()
    ModerationLog.objects.filter(workspace=workspace).delete()
    ApiKey.objects.filter(workspace=workspace).delete()


def register() -> None:
    privacy.register(
        privacy.DataOwner(
            label="usage",
            models=(
                "usage.ApiKey",
                "usage.MemberCap",
                "usage.UsageCounter",
                "usage.Reservation",
                "usage.UsageEvent",
                "usage.UsageRollup",
                "usage.ModerationLog",
                "usage.IdempotencyRecord",
            ),
            kept=(
                "usage.UsageEvent",
                "usage.UsageRollup",
                "usage.ApiKey",
                "usage.UsageCounter",
                "usage.ModerationLog",
            ),
            export=export,
            erase_user=erase_user,
            erase_workspace=erase_workspace,
            purge_content=purge_content,
            purge_retained=purge_retained,
        )
    )

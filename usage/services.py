"""Writes of the meter that aren't the hot path: our API keys and member caps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Sum

from accounts import audit
from accounts.models import Membership, User
from config import clock
from usage.apikeys import forget_keys, new_secret, visible_prefix
from usage.limits import get_workspace_limits
from usage.models import (
    LIFETIME_START,
    ApiKey,
    CapPeriod,
    CounterScope,
    MemberCap,
    UsageCounter,
    UsageEvent,
    hash_secret,
)


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown once, never stored


@transaction.atomic
def key_create(
    *,
    membership: Membership,
    name: str,
    token_cap: int | None = None,
    cap_period: str = CapPeriod.MONTH,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    secret = new_secret()
    key = ApiKey.objects.create(
        workspace_id=membership.workspace_id,
        membership=membership,
        created_by_id=membership.user_id,
        name=name,
        prefix=visible_prefix(secret),
        key_hash=hash_secret(secret),
        token_cap=token_cap,
        cap_period=cap_period,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        expires_at=expires_at,
    )
    forget_keys([key.key_hash])  # drop a cached "unknown key" answer, however unlikely
    audit.record(
        workspace=membership.workspace,
        actor=membership.user,
        action="key.created",
        target=f"{name} ({key.prefix}…)",
    )
    return CreatedKey(key=key, secret=secret)


def _rebuild_counter(*, key: ApiKey) -> None:
    """After a cap period change, start the counter from the ledger so the new
    period counts what the key already used in it."""
    period_start = (
        LIFETIME_START
        if key.cap_period == CapPeriod.LIFETIME
        else get_workspace_limits(key.workspace).period_start
    )
    used = (
        UsageEvent.objects.filter(api_key=key, created_at__gte=period_start).aggregate(
            total=Sum("total_tokens")
        )["total"]
        or 0
    )
    counter, created = UsageCounter.objects.select_for_update().get_or_create(
        scope=CounterScope.KEY,
        scope_id=key.pk,
        period_start=period_start,
        defaults={"workspace_id": key.workspace_id, "used": used},
    )
    if not created and counter.used != used:
        counter.used = used
        counter.save(update_fields=["used"])


UPDATABLE = ("name", "token_cap", "cap_period", "rpm_limit", "tpm_limit", "expires_at")


@transaction.atomic
def key_update(*, key: ApiKey, changes: dict) -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    old_period = key.cap_period
    for field_name, value in changes.items():
        if field_name not in UPDATABLE:
            raise ValueError(f"{field_name} can't be changed")
        setattr(key, field_name, value)
    key.save(update_fields=[*changes.keys()] if changes else None)
    if key.cap_period != old_period:
        _rebuild_counter(key=key)
    forget_keys([key.key_hash])
    return key


@transaction.atomic
def key_revoke(*, key: ApiKey, acting_user: User) -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
        audit.record(
            workspace=key.workspace,
            actor=acting_user,
            action="key.revoked",
            target=f"{key.name} ({key.prefix}…)",
        )
    # Revocation takes effect at once: the cached lookup goes with it.
    forget_keys([key.key_hash])
    return key


@transaction.atomic
def member_cap_set(
    *, membership: Membership, token_cap: int | None, cap_period: str = CapPeriod.MONTH
) -> MemberCap | None:
    if token_cap is None:
        MemberCap.objects.filter(membership=membership).delete()
        return None
    cap, _ = MemberCap.objects.update_or_create(
        membership=membership, defaults={"token_cap": token_cap, "cap_period": cap_period}
    )
    return cap

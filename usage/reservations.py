"""Limits held in PostgreSQL: reserve before the upstream call, settle after.

Every applicable limit (workspace period quota, member cap, key cap) is a
`UsageCounter` row. `reserve` locks the rows `FOR UPDATE` in id order (one
global order, so concurrent requests never deadlock), checks
`used + reserved + tokens <= limit` for each, and adds the tokens to
`reserved` — all in one transaction. Two requests can't both take the last
tokens: the second waits for the first's lock and then sees its reservation.
`settle` (also one transaction) writes the ledger event, moves the tokens
from `reserved` to the actual `used`, and upserts the rollup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from config.errors import Forbidden, QuotaExceeded, SpendCapReached
from usage.limits import WorkspaceLimits, get_workspace_limits, notify_usage_recorded
from usage.models import (
    LIFETIME_START,
    ApiKey,
    CapPeriod,
    CounterScope,
    MemberCap,
    ModerationLog,
    Reservation,
    UsageCounter,
    UsageEvent,
)
from usage.money import Prices
from usage.ratecard import price_for

COUNTERS = UsageCounter._meta.db_table
ROLLUPS = "usage_usagerollup"


@dataclass(frozen=True)
class Scope:
    kind: str
    scope_id: int
    period_start: datetime
    limit: int | None


@dataclass(frozen=True)
class Hold:
    """Tokens reserved for one request and what it will be charged at."""

    request_id: str
    tokens: int
    counter_ids: tuple[int, ...]
    prices: Prices
    limits: WorkspaceLimits


def _period(cap_period: str, limits: WorkspaceLimits) -> datetime:
    return LIFETIME_START if cap_period == CapPeriod.LIFETIME else limits.period_start


def scopes_for(*, caller, limits: WorkspaceLimits) -> list[Scope]:
    scopes = [
        Scope(
            CounterScope.WORKSPACE,
            caller.workspace.pk,
            limits.period_start,
            limits.hard_token_limit,
        )
    ]
    cap = MemberCap.objects.filter(membership_id=caller.membership.pk).first()
    scopes.append(
        Scope(
            CounterScope.MEMBER,
            caller.membership.pk,
            _period(cap.cap_period if cap else CapPeriod.MONTH, limits),
            cap.token_cap if cap else None,
        )
    )
    key = caller.api_key
    if key is not None:
        scopes.append(
            Scope(CounterScope.KEY, key.pk, _period(key.cap_period, limits), key.token_cap)
        )
    return scopes


def _lock_counters(workspace_id: int, scopes: list[Scope]) -> dict[tuple, tuple[int, int, int]]:
    """Lock (creating when missing) the counter rows; {(kind, id): (pk, used, reserved)}."""
    where = " OR ".join(["(scope = %s AND scope_id = %s AND period_start = %s)"] * len(scopes))
    params = [v for s in scopes for v in (s.kind, s.scope_id, s.period_start)]
    select = (
        f"SELECT id, scope, scope_id, used, reserved FROM {COUNTERS} "  # noqa: S608
        f"WHERE {where} ORDER BY id FOR UPDATE"
    )
    with connection.cursor() as cursor:
        cursor.execute(select, params)
        rows = cursor.fetchall()
        if len(rows) < len(scopes):
            values = ", ".join(["(%s, %s, %s, %s, 0, 0)"] * len(scopes))
            cursor.execute(
                f"INSERT INTO {COUNTERS} "  # noqa: S608
                "(workspace_id, scope, scope_id, period_start, used, reserved) "
                f"VALUES {values} ON CONFLICT DO NOTHING",
                [v for s in scopes for v in (workspace_id, s.kind, s.scope_id, s.period_start)],
            )
            cursor.execute(select, params)
            rows = cursor.fetchall()
    return {(kind, scope_id): (pk, used, reserved) for pk, kind, scope_id, used, reserved in rows}


def _refuse(scope: Scope, used: int, reserved: int, tokens: int, limits: WorkspaceLimits):
    details: dict[str, Any] = {
        "used": used,
        "reserved": reserved,
        "requested": tokens,
        "limit": scope.limit,
    }
    if scope.kind == CounterScope.WORKSPACE:
        if limits.overage_policy == "stop":
            return QuotaExceeded(
                "Your plan's included tokens for this period are used up. "
                "Ask an owner or admin to upgrade to continue.",
                details={
                    **details,
                    "plan": limits.plan,
                    "period_end": limits.period_end.isoformat(),
                    "upgrade_url": limits.upgrade_url,
                    "next_plan": limits.next_plan,
                },
            )
        return SpendCapReached(
            "This request would pass the workspace's overage spend cap.",
            details={**details, "cap": "workspace", "period_end": limits.period_end.isoformat()},
        )
    which = "member" if scope.kind == CounterScope.MEMBER else "key"
    noun = "your member token cap" if which == "member" else "this API key's token cap"
    return SpendCapReached(f"This request would pass {noun}.", details={**details, "cap": which})


def reserve(*, caller, feature: str, model: str, tokens: int, request_id: str) -> Hold:
    """Hold `tokens` against every limit of the caller, or refuse (nothing held)."""
    limits = get_workspace_limits(caller.workspace)
    if not limits.allows_feature(feature):
        raise Forbidden(
            f"The feature “{feature}” is not included in your plan.",
            details={"feature": feature, "plan": limits.plan, "upgrade_url": limits.upgrade_url},
        )
    prices = price_for(model, timezone.now())
    scopes = scopes_for(caller=caller, limits=limits)
    with transaction.atomic():
        counters = _lock_counters(caller.workspace.pk, scopes)
        for scope in scopes:
            _pk, used, reserved = counters[(scope.kind, scope.scope_id)]
            if scope.limit is not None and used + reserved + tokens > scope.limit:
                raise _refuse(scope, used, reserved, tokens, limits)
        ids = sorted(pk for pk, _u, _r in counters.values())
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {COUNTERS} SET reserved = reserved + %s WHERE id = ANY(%s)",  # noqa: S608
                [tokens, ids],
            )
        Reservation.objects.create(
            request_id=request_id, workspace_id=caller.workspace.pk, tokens=tokens, counter_ids=ids
        )
    return Hold(request_id, tokens, tuple(ids), prices, limits)


def _move_counters(hold_ids: list[int], release: int, used: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {COUNTERS} c SET reserved = c.reserved - %s, used = c.used + %s "  # noqa: S608
            f"FROM (SELECT id FROM {COUNTERS} WHERE id = ANY(%s) ORDER BY id FOR UPDATE) s "
            "WHERE c.id = s.id",
            [release, used, hold_ids],
        )


def _upsert_rollup(event: UsageEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ROLLUPS} (workspace_id, day, feature, model, user_id, api_key_id, "  # noqa: S608
            "requests, input_tokens, cached_input_tokens, output_tokens, total_tokens, cost) "
            "VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s) "
            "ON CONFLICT (workspace_id, day, feature, model, user_id, api_key_id) DO UPDATE SET "
            f"requests = {ROLLUPS}.requests + 1, "
            f"input_tokens = {ROLLUPS}.input_tokens + EXCLUDED.input_tokens, "
            f"cached_input_tokens = {ROLLUPS}.cached_input_tokens + EXCLUDED.cached_input_tokens, "
            f"output_tokens = {ROLLUPS}.output_tokens + EXCLUDED.output_tokens, "
            f"total_tokens = {ROLLUPS}.total_tokens + EXCLUDED.total_tokens, "
            f"cost = {ROLLUPS}.cost + EXCLUDED.cost",
            [
                event.workspace_id,
                event.created_at.date(),
                event.feature,
                event.model,
                event.user_id or 0,
                event.api_key_id or 0,
                event.input_tokens,
                event.cached_input_tokens,
                event.output_tokens,
                event.total_tokens,
                event.cost,
            ],
        )


def settle(
    *,
    hold: Hold,
    event: UsageEvent,
    moderation: ModerationLog | None = None,
    on_recorded: Callable[[UsageEvent], Any] | None = None,
    touch_key_id: int | None = None,
) -> Any:
    """Record the event and replace the reservation by the actual tokens, in one
    transaction. Returns what `on_recorded` returned (e.g. the feature's stored
    result, saved atomically with the charge)."""
    with transaction.atomic():
        event.save()
        if moderation is not None:
            moderation.save()
        released = Reservation.objects.filter(request_id=hold.request_id).delete()[0]
        # A reservation already released by the stale-reservation task holds nothing.
        _move_counters(list(hold.counter_ids), hold.tokens if released else 0, event.total_tokens)
        _upsert_rollup(event)
        if touch_key_id is not None:
            ApiKey.objects.filter(pk=touch_key_id).update(last_used_at=event.created_at)
        if event.total_tokens:
            notify_usage_recorded(event)
        return on_recorded(event) if on_recorded is not None else None


def release_stale(*, older_than: datetime) -> int:
    """Release reservations whose request died without settling (crashed process)."""
    count = 0
    for reservation in Reservation.objects.filter(created_at__lt=older_than).order_by("pk"):
        with transaction.atomic():
            if Reservation.objects.filter(pk=reservation.pk).delete()[0]:
                _move_counters(list(reservation.counter_ids), reservation.tokens, 0)
                count += 1
    return count

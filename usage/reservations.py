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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from config import clock
from config.errors import Forbidden, QuotaExceeded, SpendCapReached
from usage import redis_client
from usage.limits import WorkspaceLimits, get_workspace_limits, notify_usage_recorded
from usage.models import (
    LIFETIME_START,
    ApiKey,
    CapPeriod,
    CounterScope,
    EventStatus,
    MemberCap,
    ModerationLog,
    Reservation,
    UsageCounter,
    UsageEvent,
)
from usage.money import Prices, cost_of
from usage.ratecard import price_for
from usage.redis_client import sync_redis
from usage.rows import deferred, in_outermost_block, insert_ctes, inserted, prepared

logger = logging.getLogger(__name__)

COUNTERS = UsageCounter._meta.db_table
MEMBER_CAP_CACHE = "tg:membercap:"
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


def member_cap_key(membership_id: int) -> str:
    return f"{MEMBER_CAP_CACHE}{membership_id}"


def member_cap(membership_id: int, raw: str | bytes | None = None) -> tuple[int | None, str]:
    """(token cap, cap period) of a member, cached in Redis (dropped on change).
    `raw`: the cache entry if the caller already read it (the rate-limit trip)."""
    name = member_cap_key(membership_id)
    if raw is None and not redis_client.is_down():
        try:
            raw = sync_redis().get(name)
        except redis_client.UNAVAILABLE:
            redis_client.mark_down()
    if raw is None:  # not cached, or Redis unreachable: PostgreSQL decides
        cap = MemberCap.objects.filter(membership_id=membership_id).first()
        raw = f"{cap.token_cap}:{cap.cap_period}" if cap else f":{CapPeriod.MONTH}"
        if not redis_client.is_down():
            try:
                sync_redis().set(name, raw, ex=300)
            except redis_client.UNAVAILABLE:
                redis_client.mark_down()
    value, _, period = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
    return (int(value) if value else None), period


def _period(cap_period: str, limits: WorkspaceLimits) -> datetime:
    return LIFETIME_START if cap_period == CapPeriod.LIFETIME else limits.period_start


def scopes_for(
    *, caller, limits: WorkspaceLimits, member_cap_raw: str | None = None
) -> list[Scope]:
    scopes = [
        Scope(
            CounterScope.WORKSPACE,
            caller.workspace.pk,
            limits.period_start,
            limits.hard_token_limit,
        )
    ]
    cap, cap_period = member_cap(caller.membership.pk, member_cap_raw)
    scopes.append(
        Scope(CounterScope.MEMBER, caller.membership.pk, _period(cap_period, limits), cap)
    )
    key = caller.api_key
    if key is not None:
        scopes.append(
            Scope(CounterScope.KEY, key.pk, _period(key.cap_period, limits), key.token_cap)
        )
    return scopes


# One statement, so the counter rows stay locked for one round trip only:
# lock the rows in id order, check every limit, and - only if all fit - add
# the tokens to `reserved` and write the reservation row.
_RESERVE_SQL = f"""
WITH wanted(scope, scope_id, period_start, lim) AS (VALUES {{values}}),
locked AS (
    SELECT c.id, c.scope, c.scope_id, c.used, c.reserved, w.lim
    FROM {COUNTERS} c JOIN wanted w
      ON c.scope = w.scope AND c.scope_id = w.scope_id AND c.period_start = w.period_start
    ORDER BY c.id FOR UPDATE OF c
),
verdict AS (
    SELECT count(*) AS found,
           coalesce(bool_and(lim IS NULL OR used + reserved + %(n)s <= lim), true) AS fits
    FROM locked
),
held AS (
    UPDATE {COUNTERS} c SET reserved = c.reserved + %(n)s
    FROM locked l, verdict v
    WHERE c.id = l.id AND v.fits AND v.found = %(expected)s
    RETURNING c.id
),
reservation AS (
    INSERT INTO usage_reservation (request_id, workspace_id, tokens, counter_ids, created_at,
        sent, user_id, api_key_id, feature, model, input_tokens)
    SELECT %(request_id)s, %(workspace_id)s, %(n)s,
           (SELECT to_jsonb(array_agg(id ORDER BY id)) FROM locked), now(),
           %(sent)s, %(user_id)s, %(api_key_id)s, %(feature)s, %(model)s, %(input_tokens)s
    FROM verdict v WHERE v.fits AND v.found = %(expected)s
    RETURNING id
)
SELECT l.id, l.scope, l.scope_id, l.used, l.reserved, v.fits, v.found
FROM locked l CROSS JOIN verdict v ORDER BY l.id
"""  # noqa: S608 - only placeholders are interpolated


def _wanted_sql(scopes: list[Scope]) -> tuple[str, dict]:
    values: list[str] = []
    params: dict[str, object] = {}
    for i, scope in enumerate(scopes):
        values.append(f"(%(k{i})s, %(i{i})s::bigint, %(p{i})s::timestamptz, %(l{i})s::bigint)")
        params |= {
            f"k{i}": scope.kind,
            f"i{i}": scope.scope_id,
            f"p{i}": scope.period_start,
            f"l{i}": scope.limit,
        }
    return ", ".join(values), params


def _create_missing_counters(workspace_id: int, scopes: list[Scope]) -> None:
    values = ", ".join(["(%s, %s, %s, %s, 0, 0)"] * len(scopes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {COUNTERS} "  # noqa: S608
            "(workspace_id, scope, scope_id, period_start, used, reserved) "
            f"VALUES {values} ON CONFLICT DO NOTHING",
            [v for s in scopes for v in (workspace_id, s.kind, s.scope_id, s.period_start)],
        )


def _try_reserve(
    *, workspace_id: int, scopes: list[Scope], tokens: int, request_id: str, row: dict
) -> tuple[bool, int, list[tuple]]:
    values, params = _wanted_sql(scopes)
    params |= {
        "n": tokens,
        "expected": len(scopes),
        "request_id": request_id,
        "workspace_id": workspace_id,
        **row,
    }
    rows = prepared(_RESERVE_SQL.format(values=values), params)
    found = rows[0][6] if rows else 0
    fits = bool(rows[0][5]) if rows else False
    return fits and found == len(scopes), found, rows


def _absolute(url: str) -> str:
    return settings.SITE_URL.rstrip("/") + url if url.startswith("/") else url


def _refuse(scope: Scope, used: int, reserved: int, tokens: int, limits: WorkspaceLimits):
    details: dict[str, Any] = {
        "used": used,
        "reserved": reserved,
        "requested": tokens,
        "limit": scope.limit,
    }
    if scope.kind == CounterScope.WORKSPACE:
        if limits.overage_policy == "stop":
            left = max(0, (scope.limit or 0) - used - reserved)
            situation = (
                "Your plan's included tokens for this period are used up."
                if left == 0
                else f"This request needs up to {tokens:,} tokens but only {left:,} are left "
                "in your plan for this period."
            )
            return QuotaExceeded(
                f"{situation} An owner or admin can upgrade to continue.",
                details={
                    **details,
                    "plan": limits.plan,
                    "period_end": limits.period_end.isoformat(),
                    "upgrade_url": _absolute(limits.upgrade_url),
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


def ensure_feature_allowed(feature: str, limits: WorkspaceLimits) -> None:
    if not limits.allows_feature(feature):
        raise Forbidden(
            f"The feature “{feature}” is not included in your plan.",
            details={"feature": feature, "plan": limits.plan, "upgrade_url": limits.upgrade_url},
        )


def reserve(
    *,
    caller,
    feature: str,
    model: str,
    tokens: int,
    request_id: str,
    input_tokens: int = 0,
    sent: bool = True,
    limits: WorkspaceLimits | None = None,
    member_cap_raw: str | None = None,
) -> Hold:
    """Hold `tokens` against every limit of the caller, or refuse (nothing held).

    `sent`: the call goes upstream right after this statement (the meter
    screens before it reserves), so the reservation row says so itself — a
    crash after it is charged by `release_stale`, never lost.
    `limits`: the workspace's current limits if the caller has them (the meter's
    version-checked cache), else read now."""
    limits = limits or get_workspace_limits(caller.workspace)
    limits.ensure_access()  # dunning / upstream backstop (billing's provider decides)
    ensure_feature_allowed(feature, limits)
    prices = price_for(model, clock.now())
    scopes = scopes_for(caller=caller, limits=limits, member_cap_raw=member_cap_raw)
    workspace_id = caller.workspace.pk
    row = {
        "sent": sent,
        "user_id": caller.user.pk,
        "api_key_id": caller.api_key.pk if caller.api_key else None,
        "feature": feature,
        "model": model,
        "input_tokens": input_tokens,
    }
    attempt = dict(
        workspace_id=workspace_id, scopes=scopes, tokens=tokens, request_id=request_id, row=row
    )
    held, found, rows = _try_reserve(**attempt)
    if not held and found < len(scopes):  # first call in a period: make its counters
        _create_missing_counters(workspace_id, scopes)
        held, found, rows = _try_reserve(**attempt)
    if not held:
        by_scope = {
            (kind, scope_id): (used, reserved) for _pk, kind, scope_id, used, reserved, *_ in rows
        }
        for scope in scopes:
            used, reserved = by_scope[(scope.kind, scope.scope_id)]
            if scope.limit is not None and used + reserved + tokens > scope.limit:
                raise _refuse(scope, used, reserved, tokens, limits)
        raise RuntimeError("reservation refused without a limit to blame")  # pragma: no cover
    ids = [row[0] for row in rows]
    return Hold(request_id, tokens, tuple(ids), prices, limits)


def _move_counters(hold_ids: list[int], release: int, used: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {COUNTERS} c SET reserved = c.reserved - %s, used = c.used + %s "  # noqa: S608
            f"FROM (SELECT id FROM {COUNTERS} WHERE id = ANY(%s) ORDER BY id FOR UPDATE) s "
            "WHERE c.id = s.id",
            [release, used, hold_ids],
        )


# The shared hot rows, in the statement that records the event: release the
# reservation, move its tokens from `reserved` to the actual `used` (counter
# rows locked in id order), and add the event to its rollup row. The event's
# INSERT (after these CTEs) stores the workspace counter's `used` after it,
# exact because the row is locked, which the statement also returns for
# billing's hook.
_SETTLE_CTES = f"""
released AS (
    DELETE FROM usage_reservation WHERE request_id = %(request_id)s RETURNING tokens
),
locked AS (
    SELECT id FROM {COUNTERS} WHERE id = ANY(%(counter_ids)s) ORDER BY id FOR UPDATE
),
moved AS (
    UPDATE {COUNTERS} c
    SET reserved = c.reserved - coalesce((SELECT sum(tokens) FROM released), 0),
        used = c.used + %(used)s
    FROM locked WHERE c.id = locked.id
    RETURNING c.id, c.scope, c.used
)"""  # noqa: S608 - table names only
_USED_AFTER = "(SELECT max(used) FILTER (WHERE scope = 'workspace') FROM moved)"
_ROLLUP_SQL = f"""
INSERT INTO {ROLLUPS} (workspace_id, day, feature, model, user_id, api_key_id,
    requests, input_tokens, cached_input_tokens, output_tokens, total_tokens, cost)
SELECT %(workspace_id)s, %(day)s, %(feature)s, %(model)s, %(user_id)s, %(api_key_id)s,
    1, %(input)s, %(cached)s, %(output)s, %(used)s, %(cost)s
FROM (SELECT count(*) FROM moved) AS after_counters
ON CONFLICT (workspace_id, day, feature, model, user_id, api_key_id) DO UPDATE SET
    requests = {ROLLUPS}.requests + 1,
    input_tokens = {ROLLUPS}.input_tokens + EXCLUDED.input_tokens,
    cached_input_tokens = {ROLLUPS}.cached_input_tokens + EXCLUDED.cached_input_tokens,
    output_tokens = {ROLLUPS}.output_tokens + EXCLUDED.output_tokens,
    total_tokens = {ROLLUPS}.total_tokens + EXCLUDED.total_tokens,
    cost = {ROLLUPS}.cost + EXCLUDED.cost
RETURNING {_USED_AFTER}"""  # noqa: S608 - table names only


def _record_and_settle(hold: Hold, event: UsageEvent, records: list, *, commit: bool) -> int | None:
    """ONE statement: the shared rows' CTEs, INSERTs of the records (the event
    first), the rollup. Returns the workspace counter's `used` after it.
    `commit`: COMMIT goes with it in the same round trip."""
    ctes, picks, params = insert_ctes(records, computed=(("workspace_used_after", _USED_AFTER),))
    sql = (
        f"WITH {_SETTLE_CTES.strip()}, {', '.join(ctes)} {_ROLLUP_SQL.strip()}, {', '.join(picks)}"
    )
    (row,) = prepared(
        sql,
        params
        | {
            "request_id": hold.request_id,
            "counter_ids": list(hold.counter_ids),
            "used": event.total_tokens,
            "workspace_id": event.workspace_id,
            "day": event.created_at.date(),
            "feature": event.feature,
            "model": event.model,
            "user_id": event.user_id or 0,
            "api_key_id": event.api_key_id or 0,
            "input": event.input_tokens,
            "cached": event.cached_input_tokens,
            "output": event.output_tokens,
            "cost": event.cost,
        },
        commit=commit,
    )
    inserted(records, row[1:])
    event.workspace_used_after = row[0]
    return row[0]


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
    result, saved atomically with the charge). `on_recorded` runs first in that
    transaction: the rows it `usage.rows.insert`s are written with the event,
    in the settle statement, so it must not query them (nor the event).

    Billing's hook runs after the commit, from the total the statement stored
    on the event (`workspace_used_after`); its writes are idempotent, and what
    a crash in between leaves undone its sweeper finishes."""
    with transaction.atomic():
        if touch_key_id is not None:
            ApiKey.objects.filter(pk=touch_key_id).update(last_used_at=event.created_at)
        # When this block opened the transaction, its COMMIT travels with the
        # settle statement, so the counter rows are locked for the server's
        # execution only.
        record, used_after = _record(
            hold, event, moderation, on_recorded, commit=in_outermost_block()
        )
    if event.total_tokens:
        _after_settle(event, hold.limits, used_after)
    return record


def settle_together(items: list[dict]) -> list[Any]:
    """Several `settle`s (each item its keyword arguments, none touching its
    key) in ONE transaction: one lock of the shared rows, one commit. What a
    burst of answers for one workspace needs: each settle holds the
    workspace's counter row through its commit, so one at a time they queue
    on it; together they pass it once. `usage.dbpool.run_db_together` calls
    this for settles that wait at once; if it raises, nothing is kept and each
    item is settled on its own.

    Locks: every counter row of the batch first, in id order (as each single
    statement takes its own); then the items in the order of their rollup
    rows, so two batches can't wait on each other."""
    if any(item.get("touch_key_id") is not None for item in items):
        raise ValueError("settle_together is for settles that don't touch their key")
    counter_ids = sorted({pk for item in items for pk in item["hold"].counter_ids})
    ordered = sorted(range(len(items)), key=lambda i: _rollup_key(items[i]["event"]))
    recorded: dict[int, tuple[Any, int | None]] = {}
    with transaction.atomic():
        if counter_ids:
            prepared(_LOCK_COUNTERS_SQL, {"ids": counter_ids})
        for i in ordered:
            item = items[i]
            recorded[i] = _record(
                item["hold"],
                item["event"],
                item.get("moderation"),
                item.get("on_recorded"),
                commit=False,  # the batch commits once, at the end of the block
            )
    for i, item in enumerate(items):
        if item["event"].total_tokens:
            _after_settle(item["event"], item["hold"].limits, recorded[i][1])
    return [recorded[i][0] for i in range(len(items))]


_LOCK_COUNTERS_SQL = f"SELECT id FROM {COUNTERS} WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE"  # noqa: S608


def _rollup_key(event: UsageEvent) -> tuple:
    return (
        event.workspace_id,
        event.created_at.date(),
        event.feature,
        event.model,
        event.user_id or 0,
        event.api_key_id or 0,
    )


def _record(
    hold: Hold,
    event: UsageEvent,
    moderation: ModerationLog | None,
    on_recorded: Callable[[UsageEvent], Any] | None,
    *,
    commit: bool,
) -> tuple[Any, int | None]:
    """Inside the settle's transaction: the feature's hook, then ONE statement.
    Returns (what the hook returned, the workspace's `used` after it)."""
    # The feature's own rows (its stored result) wait for the statement
    # below; what else its hook writes is written now, in this transaction.
    with deferred() as feature_rows:
        record = on_recorded(event) if on_recorded is not None else None
    # Then ONE statement: the rows every request of the workspace shares
    # (see _SETTLE_CTES), the ledger event, its moderation log and the
    # feature's rows. A reservation already released by the stale-reservation
    # task holds nothing: the statement then only adds the used tokens.
    records = [event, *([moderation] if moderation is not None else []), *feature_rows]
    return record, _record_and_settle(hold, event, records, commit=commit)


def _after_settle(
    event: UsageEvent, limits: WorkspaceLimits | None, used_after: int | None
) -> None:
    """Billing's hook (overage, alerts) for a committed event. The charge
    stands whatever happens here: a failure is logged and the sweeper
    (`billing.tasks.finish_usage_hooks`) does the work later."""
    try:
        notify_usage_recorded(event, limits, used_after=used_after)
    except Exception:
        logger.exception(
            "billing's hook failed for %s; its sweeper will finish it", event.request_id
        )


def no_hold(*, request_id: str, model: str) -> Hold:
    """For an event recorded without a reservation (refused by the pre-screen)."""
    return Hold(request_id, 0, (), price_for(model, clock.now()), None)  # type: ignore[arg-type]


def _unsettled_event(reservation: Reservation, prices: Prices) -> UsageEvent:
    """The charge of a call that was sent upstream and never settled: its
    reservation (an upper bound of what it used), flagged for reconciliation."""
    input_tokens = min(reservation.input_tokens, reservation.tokens)
    output_tokens = reservation.tokens - input_tokens
    return UsageEvent(
        workspace_id=reservation.workspace_id,
        user_id=reservation.user_id,
        api_key_id=reservation.api_key_id,
        feature=reservation.feature or "unknown",
        model=reservation.model or "unknown",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=reservation.tokens,
        reserved_tokens=reservation.tokens,
        input_price=prices.input_per_million,
        cached_input_price=prices.cached_input_per_million,
        output_price=prices.output_per_million,
        cost=cost_of(
            prices=prices,
            input_tokens=input_tokens,
            cached_input_tokens=0,
            output_tokens=output_tokens,
        ),
        request_id=reservation.request_id,
        status=EventStatus.UNSETTLED,
        error_code="unsettled",
        flagged=True,
        flag_reason="Sent upstream but never settled (the process died): "
        "the reservation was charged. Reconcile with the provider's usage.",
        created_at=clock.now(),
    )


def _charge_unsettled(reservation: Reservation) -> None:
    prices = price_for(reservation.model, reservation.created_at)
    hold = Hold(
        reservation.request_id,
        reservation.tokens,
        tuple(reservation.counter_ids),
        prices,
        None,  # type: ignore[arg-type]
    )
    try:
        settle(hold=hold, event=_unsettled_event(reservation, prices))
    except IntegrityError:
        # Its event exists already (a late settle or a journal replay won the
        # race): only the hold is left to free.
        _free(reservation)


def _free(reservation: Reservation) -> bool:
    with transaction.atomic():
        if not Reservation.objects.filter(pk=reservation.pk).delete()[0]:
            return False
        _move_counters(list(reservation.counter_ids), reservation.tokens, 0)
    return True


def release_stale(*, older_than: datetime) -> dict[str, int]:
    """Reservations whose request died without settling (a killed process):
    charged at the reserved amount when their call was sent upstream (event
    `unsettled`, flagged), freed when it wasn't. Exactly once: the event's
    unique request id and the row's delete decide who wins a race."""
    outcome = {"charged": 0, "freed": 0}
    stale = Reservation.objects.filter(created_at__lt=older_than).order_by("pk")
    for reservation in stale:
        if reservation.sent and reservation.tokens:
            if Reservation.objects.filter(pk=reservation.pk).exists():
                _charge_unsettled(reservation)
                outcome["charged"] += 1
        elif _free(reservation):
            outcome["freed"] += 1
    return outcome

"""Reads for the usage page (/usage/), straight from the ledger (usage.UsageEvent)
so every number matches it to the token. Owners, admins and finance see the
whole workspace; everyone else sees only their own requests.

By default the range is the current billing period to the second (not whole
days), so the totals equal the quota's `used_tokens` (GET /api/v1/quota)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from accounts.roles import Perm
from config import clock
from config.tabular import Column, Kind, csv_lines

BREAKDOWNS = {
    "feature": ("feature", "Feature"),
    "member": ("user__email", "Member"),
    "key": ("api_key__name", "API key"),
    "model": ("model", "Model"),
}
TRACE_PAGE_SIZE = 50
# The usage CSV's columns (one helper writes every table: config.tabular).
TRACE_COLUMNS = [
    Column("request_id"),
    Column("created_at", Kind.DATETIME),
    Column("feature"),
    Column("model"),
    Column("member"),
    Column("key"),
    Column("input_tokens", Kind.INTEGER),
    Column("cached_input_tokens", Kind.INTEGER),
    Column("output_tokens", Kind.INTEGER),
    Column("total_tokens", Kind.INTEGER),
    Column("latency_ms", Kind.INTEGER),
    Column("status"),
]


@dataclass(frozen=True)
class Filters:
    start: date
    end: date  # inclusive
    feature: str = ""
    model: str = ""
    status: str = ""
    member: int | None = None
    key: str = ""  # "", "browser" (no key) or an API key id
    # The billing period's exact bounds when no dates were chosen.
    start_at: datetime | None = None
    end_at: datetime | None = None

    @property
    def is_period(self) -> bool:
        return self.start_at is not None

    @property
    def start_dt(self) -> datetime:
        return self.start_at or datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_dt(self) -> datetime:
        return self.end_at or datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _date(raw: str | None, default: date) -> date:
    try:
        return date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def parse_filters(params, *, period_start: datetime, period_end: datetime) -> Filters:
    """Default: the current billing period, to the second."""
    default_start = period_start.astimezone(UTC).date()
    default_end = (period_end - timedelta(microseconds=1)).astimezone(UTC).date()
    start = _date(params.get("start"), default_start)
    end = _date(params.get("end"), default_end)
    if end < start:
        start, end = end, start
    end = min(end, start + timedelta(days=366))
    exact = (start, end) == (default_start, default_end)
    return Filters(
        start_at=period_start if exact else None,
        end_at=period_end if exact else None,
        start=start,
        end=end,
        feature=(params.get("feature") or "")[:40],
        model=(params.get("model") or "")[:100],
        status=(params.get("status") or "")[:12],
        member=_int(params.get("member")),
        key=(params.get("key") or "")[:20],
    )


def sees_everyone(membership) -> bool:
    return membership.can(Perm.VIEW_ALL_USAGE)


def visible_events(*, workspace, membership) -> QuerySet:
    from usage.models import UsageEvent

    events = UsageEvent.objects.for_workspace(workspace)
    if not sees_everyone(membership):
        events = events.filter(user_id=membership.user_id)
    return events


def filtered_events(*, workspace, membership, filters: Filters) -> QuerySet:
    events = visible_events(workspace=workspace, membership=membership).filter(
        created_at__gte=filters.start_dt, created_at__lt=filters.end_dt
    )
    if filters.feature:
        events = events.filter(feature=filters.feature)
    if filters.model:
        events = events.filter(model=filters.model)
    if filters.status:
        events = events.filter(status=filters.status)
    if filters.member is not None:
        events = events.filter(user_id=filters.member)
    if filters.key == "browser":
        events = events.filter(api_key__isnull=True)
    elif filters.key:
        events = events.filter(api_key_id=_int(filters.key) or 0)
    return events


_SUMS = {
    "requests": Count("id"),
    "input_tokens": Sum("input_tokens", default=0),
    "cached_input_tokens": Sum("cached_input_tokens", default=0),
    "output_tokens": Sum("output_tokens", default=0),
    "total_tokens": Sum("total_tokens", default=0),
}


def totals(events: QuerySet) -> dict[str, int]:
    return events.aggregate(**_SUMS)


def daily(events: QuerySet, filters: Filters) -> list[dict]:
    rows = {
        r["day"]: r
        for r in events.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(**_SUMS)
    }
    empty = {k: 0 for k in _SUMS}
    return [
        {"day": d.isoformat(), **{k: rows.get(d, empty)[k] for k in _SUMS}} for d in filters.days()
    ]


def breakdown(events: QuerySet, by: str) -> list[dict]:
    column, _label = BREAKDOWNS[by]
    id_column = {"member": "user_id", "key": "api_key_id"}.get(by, column)
    rows = events.values(id_column, column).annotate(**_SUMS).order_by("-total_tokens", column)
    result = []
    for row in rows:
        name = row[column]
        if by == "key" and name is None:
            name = "Browser (no key)"
        elif name is None:
            name = "(deleted)"
        result.append({"id": row[id_column], "name": name, **{k: row[k] for k in _SUMS}})
    return result


# A projection speaks only after this much of the period has passed: a pace
# taken from minutes (e.g. right after an upgrade) says nothing about a month.
PROJECTION_MIN_HISTORY = timedelta(days=3)
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class QuotaView:
    plan_name: str
    included: int
    used: int
    reserved: int
    period_start: datetime
    period_end: datetime
    projected: int | None  # None: not enough history yet
    runs_out_on: date | None
    upgrade_url: str
    overage_policy: str = "stop"
    monthly_price: Decimal = Decimal("0")
    overage_price_per_million: Decimal = Decimal("0")

    @property
    def percent(self) -> Decimal:
        """Exact share of the included tokens used (may pass 100 on metered plans)."""
        if not self.included:
            return Decimal(0)
        return (Decimal(100) * self.used / self.included).quantize(Decimal("0.1"))

    @property
    def bar_percent(self) -> Decimal:
        return min(Decimal(100), self.percent)

    @property
    def projected_percent(self) -> int | None:
        if self.projected is None or not self.included:
            return None
        return round(Decimal(100) * self.projected / self.included)

    @property
    def projected_bar_percent(self) -> int:
        return min(100, self.projected_percent or 0)

    @property
    def remaining(self) -> int:
        return max(0, self.included - self.used - self.reserved)

    @property
    def last_day(self) -> date:
        return (self.period_end - timedelta(microseconds=1)).astimezone(UTC).date()

    @property
    def history_from(self) -> datetime:
        return self.period_start + PROJECTION_MIN_HISTORY

    # --- money: what the customer pays, beside the tokens ----------------------

    @property
    def overage_tokens(self) -> int:
        return max(0, self.used - self.included) if self.overage_policy == "metered" else 0

    @property
    def overage_cost(self) -> Decimal:
        return (self.overage_tokens * self.overage_price_per_million / MILLION).quantize(
            Decimal("0.01")
        )

    @property
    def charges_so_far(self) -> Decimal:
        return self.monthly_price + self.overage_cost

    @property
    def price_per_million_included(self) -> Decimal | None:
        if not self.included or not self.monthly_price:
            return None
        return (self.monthly_price * MILLION / self.included).quantize(Decimal("0.01"))


def project(
    *, used: int, included: int, period_start: datetime, period_end: datetime, now: datetime
) -> tuple[int | None, date | None]:
    """Tokens by the period's end at the pace so far, and the day the included
    tokens run out at that pace — (None, None) until there is enough history."""
    if now - period_start < PROJECTION_MIN_HISTORY or not used:
        return None, None
    length = (period_end - period_start).total_seconds()
    elapsed = min(length, (now - period_start).total_seconds())
    projected = used * length / elapsed
    runs_out_on = None
    if included and projected > included and used < included:
        seconds = included * elapsed / used
        runs_out_on = (period_start + timedelta(seconds=seconds)).astimezone(UTC).date()
    return round(projected), runs_out_on


def quota_view(*, workspace, now: datetime | None = None) -> QuotaView:
    """The workspace's quota this period from the ledger (equal to the meter's
    counter, which the quota API reads), and where the current pace leads."""
    from usage.limits import get_workspace_limits
    from usage.models import UsageEvent
    from usage.selectors import workspace_counter

    limits = get_workspace_limits(workspace)
    now = now or clock.now()
    used = (
        UsageEvent.objects.for_workspace(workspace)
        .filter(created_at__gte=limits.period_start, created_at__lt=limits.period_end)
        .aggregate(t=Sum("total_tokens", default=0))["t"]
    )
    _counted, reserved = workspace_counter(workspace=workspace, limits=limits)
    projected, runs_out_on = project(
        used=used,
        included=limits.included_tokens,
        period_start=limits.period_start,
        period_end=limits.period_end,
        now=now,
    )
    return QuotaView(
        plan_name=limits.plan_name,
        included=limits.included_tokens,
        used=used,
        reserved=reserved,
        period_start=limits.period_start,
        period_end=limits.period_end,
        projected=projected,
        runs_out_on=runs_out_on,
        upgrade_url=limits.upgrade_url,
        overage_policy=limits.overage_policy,
        monthly_price=getattr(limits, "monthly_price", Decimal("0")),
        overage_price_per_million=limits.overage_price_per_million,
    )


def trace(events: QuerySet) -> QuerySet:
    return events.select_related("user", "api_key").order_by("-created_at", "-pk")


def trace_row(event) -> dict:
    return {
        "request_id": event.request_id,
        "created_at": event.created_at,
        "feature": event.feature,
        "model": event.model,
        "member": event.user.email if event.user else "",
        "key": event.api_key.name if event.api_key else "",
        "input_tokens": event.input_tokens,
        "cached_input_tokens": event.cached_input_tokens,
        "output_tokens": event.output_tokens,
        "total_tokens": event.total_tokens,
        "latency_ms": event.latency_ms,
        "status": event.status,
    }


def trace_csv(events: QuerySet) -> Iterator[str]:
    """The trace as CSV lines, streamed (formula-escaped by config.tabular)."""
    rows = (trace_row(e) for e in trace(events).iterator(chunk_size=2000))
    return csv_lines(TRACE_COLUMNS, rows)


def filter_choices(*, workspace, membership) -> dict[str, list]:
    events = visible_events(workspace=workspace, membership=membership)
    choices = {
        "features": sorted(set(events.values_list("feature", flat=True).distinct())),
        "models": sorted(set(events.values_list("model", flat=True).distinct())),
        "keys": list(
            events.filter(api_key__isnull=False)
            .values_list("api_key_id", "api_key__name")
            .distinct()
            .order_by("api_key__name")
        ),
        "members": [],
    }
    if sees_everyone(membership):
        from accounts.selectors import workspace_members

        choices["members"] = [
            (m.user_id, m.user.email) for m in workspace_members(workspace=workspace)
        ]
    return choices

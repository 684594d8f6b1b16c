"""Reads for the usage dashboard, straight from the ledger (usage.UsageEvent)
so every number matches it to the token. Owners, admins and finance see the
whole workspace; everyone else sees only their own requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

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

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_dt(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

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
    """Default: the current billing period (up to its last day)."""
    default_end = (period_end - timedelta(microseconds=1)).astimezone(UTC).date()
    start = _date(params.get("start"), period_start.astimezone(UTC).date())
    end = _date(params.get("end"), default_end)
    if end < start:
        start, end = end, start
    end = min(end, start + timedelta(days=366))
    return Filters(
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


@dataclass(frozen=True)
class QuotaView:
    plan_name: str
    included: int
    used: int
    period_start: datetime
    period_end: datetime
    projected: int
    runs_out_on: date | None
    upgrade_url: str

    @property
    def percent(self) -> float:
        return min(100.0, 100 * self.used / self.included) if self.included else 0.0

    @property
    def projected_percent(self) -> float:
        return min(100.0, 100 * self.projected / self.included) if self.included else 0.0

    @property
    def remaining(self) -> int:
        return max(0, self.included - self.used)


def quota_view(*, workspace, now: datetime | None = None) -> QuotaView:
    """The workspace's quota this period, and where the current pace leads."""
    from usage.limits import get_workspace_limits
    from usage.models import UsageEvent

    limits = get_workspace_limits(workspace)
    now = now or clock.now()
    used = (
        UsageEvent.objects.for_workspace(workspace)
        .filter(created_at__gte=limits.period_start, created_at__lt=limits.period_end)
        .aggregate(t=Sum("total_tokens", default=0))["t"]
    )
    length = (limits.period_end - limits.period_start).total_seconds()
    elapsed = max(60.0, min(length, (now - limits.period_start).total_seconds()))
    rate = used / elapsed  # tokens per second so far
    projected = round(rate * length)
    runs_out_on = None
    if rate > 0 and limits.included_tokens and projected > limits.included_tokens:
        seconds = limits.included_tokens / rate
        runs_out_on = (limits.period_start + timedelta(seconds=seconds)).date()
    return QuotaView(
        plan_name=limits.plan_name,
        included=limits.included_tokens,
        used=used,
        period_start=limits.period_start,
        period_end=limits.period_end,
        projected=projected,
        runs_out_on=runs_out_on,
        upgrade_url=limits.upgrade_url,
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

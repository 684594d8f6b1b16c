"""Reads of the meter. Every read takes the workspace (and the person, where
members may only see their own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, QuerySet, Sum

from accounts.models import Membership, User, Workspace
from accounts.roles import Perm
from usage.limits import WorkspaceLimits, get_workspace_limits
from usage.models import (
    LIFETIME_START,
    ApiKey,
    CapPeriod,
    CounterScope,
    MemberCap,
    UsageCounter,
    UsageEvent,
    UsageRollup,
)

GROUPS = ("day", "feature", "member", "key", "model")


def percent_of(used: int, included: int) -> Decimal:
    """Share of the quota used, exact to one decimal (capped for display)."""
    if not included:
        return Decimal("0.0")
    share = (Decimal(used) * 100 / Decimal(included)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return min(share, Decimal("999.9"))


def sees_everyone(membership: Membership) -> bool:
    return membership.can(Perm.VIEW_ALL_USAGE)


def manages_all_keys(membership: Membership) -> bool:
    return membership.can(Perm.MANAGE_MEMBERS)


def keys_for(*, membership: Membership) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.for_workspace(membership.workspace).select_related("created_by")
    if not manages_all_keys(membership):
        keys = keys.filter(created_by_id=membership.user_id)
    return keys


def key_used_tokens(*, keys: list[ApiKey], limits: WorkspaceLimits) -> dict[int, int]:
    """Tokens each key used in its cap period (this billing period or lifetime)."""
    wanted = Q(pk__in=[])
    for key in keys:
        start = LIFETIME_START if key.cap_period == CapPeriod.LIFETIME else limits.period_start
        wanted |= Q(scope_id=key.pk, period_start=start)
    rows = UsageCounter.objects.filter(scope=CounterScope.KEY).filter(wanted)
    return {row.scope_id: row.used for row in rows}


def workspace_counter(*, workspace: Workspace, limits: WorkspaceLimits) -> tuple[int, int]:
    row = (
        UsageCounter.objects.for_workspace(workspace)
        .filter(
            scope=CounterScope.WORKSPACE, scope_id=workspace.pk, period_start=limits.period_start
        )
        .values_list("used", "reserved")
        .first()
    )
    return row or (0, 0)


def quota(*, workspace: Workspace) -> dict:
    limits = get_workspace_limits(workspace)
    used, reserved = workspace_counter(workspace=workspace, limits=limits)
    included = limits.included_tokens
    return {
        "plan": limits.plan,
        "plan_name": limits.plan_name,
        "period_start": limits.period_start.isoformat(),
        "period_end": limits.period_end.isoformat(),
        "included_tokens": included,
        "used_tokens": used,
        "reserved_tokens": reserved,
        "remaining_tokens": max(0, included - used - reserved),
        "percent_used": percent_of(used, included),
        "overage_policy": limits.overage_policy,
        "hard_token_limit": limits.hard_token_limit,
        "upgrade_url": limits.upgrade_url,
        "next_plan": limits.next_plan,
    }


@dataclass(frozen=True)
class UsageRow:
    group: str
    label: str
    requests: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    total_tokens: int


_GROUP_FIELD = {
    "day": "day",
    "feature": "feature",
    "member": "user_id",
    "key": "api_key_id",
    "model": "model",
}


def _labels(group_by: str, values: list, workspace: Workspace) -> dict:
    if group_by == "member":
        users = User.objects.filter(pk__in=values).values_list("pk", "email")
        return {0: "(deleted person)", **dict(users)}
    if group_by == "key":
        keys = ApiKey.objects.for_workspace(workspace).filter(pk__in=values)
        return {0: "Browser (no key)", **{k.pk: f"{k.name} ({k.prefix}…)" for k in keys}}
    return {}


def usage_rows(
    *, workspace: Workspace, start: date, end: date, group_by: str, user: User | None = None
) -> list[UsageRow]:
    """Tokens and requests per group between two days (inclusive), from the rollup."""
    field = _GROUP_FIELD[group_by]
    rows = UsageRollup.objects.for_workspace(workspace).filter(day__gte=start, day__lte=end)
    if user is not None:
        rows = rows.filter(user_id=user.pk)
    sums = list(
        rows.values(field)
        .annotate(
            n=Sum("requests"),
            inp=Sum("input_tokens"),
            cached=Sum("cached_input_tokens"),
            out=Sum("output_tokens"),
            total=Sum("total_tokens"),
        )
        .order_by(field)
    )
    labels = _labels(group_by, [r[field] for r in sums], workspace)
    return [
        UsageRow(
            group=str(r[field]),
            label=str(labels.get(r[field], r[field])),
            requests=r["n"],
            input_tokens=r["inp"],
            cached_input_tokens=r["cached"],
            output_tokens=r["out"],
            total_tokens=r["total"],
        )
        for r in sums
    ]


def events(
    *, workspace: Workspace, start: datetime, end: datetime, user: User | None = None
) -> QuerySet[UsageEvent]:
    qs = (
        UsageEvent.objects.for_workspace(workspace)
        .filter(created_at__gte=start, created_at__lt=end)
        .select_related("user", "api_key")
    )
    if user is not None:
        qs = qs.filter(user=user)
    return qs


def member_caps(*, workspace: Workspace) -> list[tuple[Membership, MemberCap | None]]:
    """Every member of the workspace with their token cap, if any."""
    members = Membership.objects.for_workspace(workspace).select_related("user", "token_cap")
    return [(m, getattr(m, "token_cap", None)) for m in members.order_by("user__email")]

"""What a workspace may do right now: the meter's one question to billing.

`usage` never imports `billing` (DESIGN.md). Instead billing names a provider in
the setting `TOLLGATE_LIMITS_PROVIDER` (a dotted path to a function
`(workspace) -> WorkspaceLimits`). Until billing sets it, `default_limits`
answers from settings. The feature registry asks the same function which
features are enabled.

The setting `TOLLGATE_USAGE_RECORDED_HOOK` may name a function
`(event, limits=None, used_after=None) -> None`; the meter calls it right after
the transaction that records a usage event commits, with the limits the call
was admitted under and the workspace's period total including the event (read
by the settle statement while the counter row was locked, and stored on the
event). Billing uses it to queue metered overage for Stripe and usage alerts;
its writes are idempotent, and its sweeper redoes what a crash cut short.

The hot path keeps each workspace's limits per process, tagged with a version
read from Redis in the same round trip as the rate-limit script
(`version_keys`): whoever changes what a provider answers (a subscription, a
tier) calls `bump_version` after commit, and the next call anywhere sees a
new version and reads the limits afresh. A cached entry also lapses at its
period's end."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from config import clock
from config.errors import ApiError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from accounts.models import Workspace

OveragePolicy = Literal["stop", "metered"]


@dataclass(frozen=True)
class AccessRefusal:
    """Why the provider refuses feature calls outright (billing: dunning or the
    upstream budget backstop). Carried on the limits the meter already reads, so
    refusing costs no extra query on the hot path."""

    status: int  # 402 payment_overdue, 503 upstream_unavailable
    code: str
    message: str
    details: tuple[tuple[str, str], ...] = ()

    def as_error(self) -> ApiError:
        return ApiError(
            self.message, code=self.code, status=self.status, details=dict(self.details)
        )


@dataclass(frozen=True)
class WorkspaceLimits:
    plan: str  # slug of the tier, e.g. "free"
    plan_name: str
    included_tokens: int  # per billing period, input + output
    period_start: datetime
    period_end: datetime
    overage_policy: OveragePolicy = "stop"
    # For "metered": how many tokens past `included_tokens` the workspace's spend
    # cap allows (None: no cap). Ignored for "stop".
    overage_token_allowance: int | None = 0
    overage_price_per_million: Decimal = Decimal("0")
    rpm_limit: int | None = None  # requests per minute for the workspace
    tpm_limit: int | None = None  # tokens per minute for the workspace
    features: frozenset[str] | None = None  # None: every feature
    next_plan: str | None = None  # slug of the next tier up
    upgrade_url: str = "/billing/upgrade/"
    refusal: AccessRefusal | None = None  # set: every feature call is refused
    monthly_price: Decimal = Decimal("0")  # the plan's fee, shown beside the tokens

    def ensure_access(self) -> None:
        if self.refusal is not None:
            raise self.refusal.as_error()

    def allows_feature(self, slug: str) -> bool:
        return self.features is None or slug in self.features

    @property
    def hard_token_limit(self) -> int | None:
        """Tokens the workspace may use this period before calls are refused."""
        if self.overage_policy == "stop":
            return self.included_tokens
        if self.overage_token_allowance is None:
            return None
        return self.included_tokens + self.overage_token_allowance


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def default_limits(workspace: Workspace) -> WorkspaceLimits:
    """Used until billing provides tiers: the calendar month, quota from settings."""
    start, end = _month_bounds(clock.now())
    return WorkspaceLimits(
        plan="default",
        plan_name="Default",
        included_tokens=settings.TOLLGATE_DEFAULT_INCLUDED_TOKENS,
        period_start=start,
        period_end=end,
        rpm_limit=settings.TOLLGATE_DEFAULT_RPM,
        tpm_limit=settings.TOLLGATE_DEFAULT_TPM,
    )


# --- The per-process cache, validated by a version in Redis ------------------------

VERSION_KEY = "tg:limits-v"  # every workspace (tier edits)
_cached: dict[int, tuple[tuple, WorkspaceLimits]] = {}


def version_keys(workspace_id: int) -> tuple[str, str]:
    """The Redis keys whose values together version a workspace's limits."""
    return VERSION_KEY, f"{VERSION_KEY}:{workspace_id}"


def cached_limits(workspace_id: int, version: tuple | None = None) -> WorkspaceLimits | None:
    """This process's limits for the workspace: if `version` is given, only
    when they were read under that version; never past their period's end."""
    entry = _cached.get(workspace_id)
    if entry is None or (version is not None and entry[0] != version):
        return None
    if clock.now() >= entry[1].period_end:
        return None
    return entry[1]


def remember_limits(workspace_id: int, version: tuple, limits: WorkspaceLimits) -> None:
    _cached[workspace_id] = (version, limits)


def forget_cached_limits() -> None:
    _cached.clear()


def bump_version(workspace_id: int | None = None) -> None:
    """Make every process re-read limits (one workspace's, or all when None).
    Bumped now and again after commit: a call racing the change could read the
    old row under the new version before the change commits."""
    from django.db import transaction

    from usage import redis_client
    from usage.redis_client import sync_redis

    name = VERSION_KEY if workspace_id is None else f"{VERSION_KEY}:{workspace_id}"
    _cached.clear() if workspace_id is None else _cached.pop(workspace_id, None)

    def bump() -> None:
        try:
            sync_redis().incr(name)
        except redis_client.UNAVAILABLE:
            # While Redis is away every call re-reads its limits anyway.
            redis_client.mark_down()
            logger.warning("could not bump the limits version %s", name)

    bump()
    transaction.on_commit(bump)


@cache
def _provider():
    return import_string(settings.TOLLGATE_LIMITS_PROVIDER)


def get_workspace_limits(workspace: Workspace) -> WorkspaceLimits:
    return _provider()(workspace)


@cache
def _recorded_hook():
    hook = settings.TOLLGATE_USAGE_RECORDED_HOOK
    return import_string(hook) if hook else None


@receiver(setting_changed)
def _forget_named_functions(*, setting: str, **kwargs) -> None:
    if setting in {"TOLLGATE_LIMITS_PROVIDER", "TOLLGATE_USAGE_RECORDED_HOOK"}:
        _provider.cache_clear()
        _recorded_hook.cache_clear()


def notify_usage_recorded(
    event, limits: WorkspaceLimits | None = None, *, used_after: int | None = None
) -> None:
    """After the event's charge committed. `used_after`: the workspace
    counter's tokens including this event, as the settle statement left it
    (also stored on the event as `workspace_used_after`)."""
    hook = _recorded_hook()
    if hook is not None:
        hook(event, limits=limits, used_after=used_after)

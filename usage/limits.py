"""What a workspace may do right now: the meter's one question to billing.

`usage` never imports `billing` (DESIGN.md). Instead billing names a provider in
the setting `TOLLGATE_LIMITS_PROVIDER` (a dotted path to a function
`(workspace) -> WorkspaceLimits`). Until billing sets it, `default_limits`
answers from settings. The feature registry asks the same function which
features are enabled.

The setting `TOLLGATE_USAGE_RECORDED_HOOK` may name a function `(event) -> None`;
the meter calls it inside the transaction that records a usage event (billing
uses it to queue metered overage for Stripe and usage alerts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.utils.module_loading import import_string

from config import clock
from config.errors import ApiError

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


@cache
def _provider():
    return import_string(settings.TOLLGATE_LIMITS_PROVIDER)


def get_workspace_limits(workspace: Workspace) -> WorkspaceLimits:
    return _provider()(workspace)


def notify_usage_recorded(event) -> None:
    if settings.TOLLGATE_USAGE_RECORDED_HOOK:
        import_string(settings.TOLLGATE_USAGE_RECORDED_HOOK)(event)

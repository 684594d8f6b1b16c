"""The meter's write hooks into billing (limits read, hooks write).

`on_usage_recorded` is TOLLGATE_USAGE_RECORDED_HOOK: the meter calls it right
after an event's charge commits (usage.limits.notify_usage_recorded), with the
workspace counter's total including this event (`used_after`), which the
settle statement read while the row was locked and stored on the event
(`UsageEvent.workspace_used_after`). Each event's share of the overage and the
thresholds it crossed are therefore exact whatever order the hooks run in.

- Metered-overage tiers: the tokens of this event past the included amount go to
  the OverageReport outbox (one per usage event); a task sends them to Stripe.
- Usage alerts at 50/80/100 % of the included tokens, once per period.

Both writes are idempotent, so `finish_interrupted_hooks` (beat) can run the
hook again for the events whose effects a crash between the commit and the
hook left missing."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q

from billing.enqueue import enqueue_on_commit
from billing.limits import admitted_limits, subscription_for, workspace_limits
from billing.models import BillingNotice, OverageReport
from billing.selectors import used_tokens
from config import clock
from usage.models import UsageEvent, UsageRollup

logger = logging.getLogger(__name__)


def _overage_in(event_tokens: int, used_after: int, included: int) -> int:
    used_before = used_after - event_tokens
    return max(0, used_after - included) - max(0, used_before - included)


def _queue_overage(event, tokens: int, limits) -> None:
    sub = subscription_for(event.workspace_id)
    if sub is None or not sub.stripe_customer_id:
        return
    try:
        with transaction.atomic():
            report = OverageReport.objects.create(
                workspace_id=event.workspace_id,
                usage_event_id=event.pk,
                tokens=tokens,
                stripe_customer_id=sub.stripe_customer_id,
                period_start=limits.period_start,
            )
    except IntegrityError:
        return  # reported already (the sweeper and a late hook met)
    enqueue_on_commit("send_overage_report", report.pk)


def claim_notice(*, workspace_id: int, kind: str, period_start) -> bool:
    """True the first time (workspace, kind, period) is claimed; a savepoint keeps
    a duplicate from spoiling the caller's transaction."""
    try:
        with transaction.atomic():
            BillingNotice.objects.create(
                workspace_id=workspace_id, kind=kind, period_start=period_start
            )
    except IntegrityError:
        return False
    return True


def exhausted_kind(limits) -> str:
    return f"quota_exhausted:{limits.plan}"


def _queue_alert(workspace_id: int, threshold: int, limits) -> None:
    enqueue_on_commit("send_usage_alert", workspace_id, threshold, limits.period_start.isoformat())


def on_quota_exceeded(workspace_id: int, limits) -> None:
    """The one 'included tokens used up' email of the period (a 402 or 100 %)."""
    if limits.overage_policy != "stop":
        return
    if claim_notice(
        workspace_id=workspace_id, kind=exhausted_kind(limits), period_start=limits.period_start
    ):
        _queue_alert(workspace_id, 100, limits)


def _alerts(event, used_after: int, limits) -> None:
    if not limits.included_tokens:
        return
    before, after = (used_after - event.total_tokens) * 100, used_after * 100
    for threshold in settings.BILLING_USAGE_ALERT_THRESHOLDS:
        if not before < threshold * limits.included_tokens <= after:
            continue
        if threshold >= 100 and limits.overage_policy == "stop":
            on_quota_exceeded(event.workspace_id, limits)
        elif claim_notice(
            workspace_id=event.workspace_id,
            kind=f"usage_{threshold}",
            period_start=limits.period_start,
        ):
            _queue_alert(event.workspace_id, threshold, limits)


def on_usage_recorded(event, limits=None, used_after: int | None = None) -> None:
    # The limits the call was admitted under: its overage and alerts belong to
    # the plan and period it ran in.
    limits = limits or admitted_limits(event.workspace_id)
    if used_after is None:
        # Not from the settle statement (the event held no workspace counter):
        # the committed total, which already includes this event.
        used_after, _reserved = used_tokens(event.workspace_id, limits)
    if limits.overage_policy == "metered":
        tokens = _overage_in(event.total_tokens, used_after, limits.included_tokens)
        if tokens > 0:
            _queue_overage(event, tokens, limits)
    _alerts(event, used_after, limits)


# --- Finishing what a crash interrupted ---------------------------------------------------

SWEEP_WINDOW = timedelta(hours=24)
# Younger events may have their hook running right now.
SWEEP_GRACE = timedelta(seconds=60)


def _unfinished(workspace_id: int, limits, since, until) -> list[UsageEvent]:
    """The events of the window whose hook has work left: past the included
    tokens of a metered tier without an overage report, or crossing an alert
    threshold whose notice isn't claimed."""
    wanted = Q()
    included = limits.included_tokens or 0
    if limits.overage_policy == "metered":
        reported = OverageReport.objects.filter(usage_event_id=OuterRef("pk"))
        wanted |= Q(~Exists(reported), workspace_used_after__gt=included)
    for threshold in settings.BILLING_USAGE_ALERT_THRESHOLDS if included else ():
        if BillingNotice.objects.filter(
            workspace_id=workspace_id,
            kind=_alert_kind(threshold, limits),
            period_start=limits.period_start,
        ).exists():
            continue
        # The event took the total from below the threshold to at or above it.
        crossing = -(-threshold * included // 100)
        wanted |= Q(workspace_used_after__gte=crossing) & Q(
            workspace_used_after__lt=F("total_tokens") + crossing
        )
    if not wanted:
        return []
    return list(
        UsageEvent.objects.filter(
            workspace_id=workspace_id,
            created_at__gte=max(since, limits.period_start),
            created_at__lt=until,
            total_tokens__gt=0,
            workspace_used_after__isnull=False,
        )
        .filter(wanted)
        .order_by("created_at", "pk")
    )


def _alert_kind(threshold: int, limits) -> str:
    if threshold >= 100 and limits.overage_policy == "stop":
        return exhausted_kind(limits)
    return f"usage_{threshold}"


def finish_interrupted_hooks() -> int:
    """Run the hook again for recent events whose overage report or alert is
    missing (the process died between the charge's commit and its hook).
    Returns how many events it finished."""
    now = clock.now()
    since, until = now - SWEEP_WINDOW, now - SWEEP_GRACE
    workspaces = (
        UsageRollup.objects.filter(day__gte=since.date())
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    finished = 0
    for workspace_id in workspaces:
        limits = workspace_limits(workspace_id)
        for event in _unfinished(workspace_id, limits, since, until):
            on_usage_recorded(event, limits, used_after=event.workspace_used_after)
            finished += 1
    if finished:
        # Only a crash between a charge's commit and its hook gets here.
        logger.warning("finished billing's hook for %d usage event(s) a crash cut short", finished)
    return finished

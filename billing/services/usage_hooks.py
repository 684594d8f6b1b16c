"""The meter's write hooks into billing (limits read, hooks write).

`on_usage_recorded` is TOLLGATE_USAGE_RECORDED_HOOK: it runs inside the meter's
recording transaction (usage.limits.notify_usage_recorded), last, where the
meter holds the workspace's counter row locked and passes its total including
this event (`used_after`), so concurrent events for the workspace wait.

- Metered-overage tiers: the tokens of this event past the included amount go to
  the OverageReport outbox; a task sends them to Stripe after commit.
- Usage alerts at 50/80/100 % of the included tokens, once per period."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.enqueue import enqueue_on_commit
from billing.limits import admitted_limits, subscription_for
from billing.models import BillingNotice, OverageReport, Subscription
from billing.selectors import used_tokens


def _overage_in(event_tokens: int, used_after: int, included: int) -> int:
    used_before = used_after - event_tokens
    return max(0, used_after - included) - max(0, used_before - included)


def _queue_overage(event, tokens: int, limits) -> None:
    sub = subscription_for(event.workspace_id)
    if sub is None or not sub.stripe_customer_id:
        return
    report = OverageReport.objects.create(
        workspace_id=event.workspace_id,
        usage_event_id=event.pk,
        tokens=tokens,
        stripe_customer_id=sub.stripe_customer_id,
        period_start=limits.period_start,
    )
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
    before = (used_after - event.total_tokens) * 100 / limits.included_tokens
    after = used_after * 100 / limits.included_tokens
    for threshold in settings.BILLING_USAGE_ALERT_THRESHOLDS:
        if not before < threshold <= after:
            continue
        if threshold >= 100 and limits.overage_policy == "stop":
            on_quota_exceeded(event.workspace_id, limits)
        elif claim_notice(
            workspace_id=event.workspace_id,
            kind=f"usage_{threshold}",
            period_start=limits.period_start,
        ):
            _queue_alert(event.workspace_id, threshold, limits)


def _used_after(event, limits) -> int:
    """Tokens used in the period including this event. The meter calls the hook
    after inserting the event and before moving its counters (it keeps the hot
    counter rows for last), so the counter doesn't include this event yet."""
    used, _reserved = used_tokens(event.workspace_id, limits)
    return used + event.total_tokens


def on_usage_recorded(event, limits=None, used_after: int | None = None) -> None:
    # The limits the call was admitted under: its overage and alerts belong to
    # the plan and period it ran in.
    limits = limits or admitted_limits(event.workspace_id)
    if used_after is not None:
        # The meter's settle statement left the workspace counter locked with
        # this event in it: exact, and concurrent recordings wait for our commit,
        # so each event's overage is computed once against its predecessors.
        if limits.overage_policy == "metered":
            tokens = _overage_in(event.total_tokens, used_after, limits.included_tokens)
            if tokens > 0:
                _queue_overage(event, tokens, limits)
        _alerts(event, used_after, limits)
        return
    if limits.overage_policy == "metered":
        # Serialize a metered workspace's recordings on its billing row (nothing
        # else the meter locks), so each event's overage is computed exactly once
        # against its predecessors' committed counters.
        list(
            Subscription.objects.select_for_update()
            .filter(workspace_id=event.workspace_id)
            .values_list("pk", flat=True)
        )
        used_after = _used_after(event, limits)
        tokens = _overage_in(event.total_tokens, used_after, limits.included_tokens)
        if tokens > 0:
            _queue_overage(event, tokens, limits)
    else:
        used_after = _used_after(event, limits)
    _alerts(event, used_after, limits)

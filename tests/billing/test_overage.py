"""Metered overage: the outbox row is written in the recording transaction and
sent to Stripe as a meter event identified by the usage event's id."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core import mail
from django.db import transaction

from billing.limits import workspace_limits
from billing.models import BillingNotice, OverageReport
from billing.services.overage import overage_report_send
from tests.billing.test_flow import subscribe
from usage.limits import notify_usage_recorded
from usage.models import CounterScope, UsageCounter, UsageEvent


def record(workspace, owner, tokens: int, used_after: int, n: int) -> UsageEvent:
    """What the meter does when it settles a request: the counter moves and the
    event is inserted, then billing's hook runs — all in one transaction."""
    limits = workspace_limits(workspace)
    with transaction.atomic():
        UsageCounter.objects.update_or_create(
            workspace=workspace,
            scope=CounterScope.WORKSPACE,
            scope_id=workspace.pk,
            period_start=limits.period_start,
            defaults={"used": used_after},
        )
        event = UsageEvent.objects.create(
            workspace=workspace,
            user=owner,
            feature="summarize",
            model="gpt-4o-mini",
            input_tokens=tokens // 2,
            output_tokens=tokens - tokens // 2,
            total_tokens=tokens,
            request_id=f"req-{n}",
        )
        notify_usage_recorded(event)
    return event


def test_overage_goes_to_stripe_once_per_usage_event(
    workspace, owner, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    sub = subscribe(workspace, stripe_tiers["team"], stripe_env)
    included = stripe_tiers["team"].included_tokens
    limits = workspace_limits(workspace)
    assert limits.overage_policy == "metered"
    assert limits.overage_token_allowance == 5_000_000  # $40 cap / $8 per 1M

    with django_capture_on_commit_callbacks(execute=True):
        record(workspace, owner, included - 200, included - 200, 1)  # inside the quota
        first = record(workspace, owner, 1_000, included + 800, 2)  # crosses it: 800 over
        second = record(workspace, owner, 500, included + 1_300, 3)  # all 500 over
    reports = list(OverageReport.objects.order_by("pk"))
    assert [(r.usage_event_id, r.tokens) for r in reports] == [(first.pk, 800), (second.pk, 500)]
    assert all(r.sent_at for r in reports)
    event_name = settings.BILLING_OVERAGE_METER_EVENT
    assert stripe_env.meter_total(sub.stripe_customer_id, event_name) == Decimal(1_300)

    # A resend (crashed worker, retried task) is dropped by the identifier.
    OverageReport.objects.filter(pk=reports[0].pk).update(sent_at=None)
    overage_report_send(report_pk=reports[0].pk)
    assert stripe_env.meter_total(sub.stripe_customer_id, event_name) == Decimal(1_300)

    # 50/80/100 % alerts: one each per period, to owners and admins.
    kinds = set(BillingNotice.objects.values_list("kind", flat=True))
    assert kinds == {"usage_50", "usage_80", "usage_100"}
    assert len(mail.outbox) == 3
    assert all(m.to == [owner.email] and m.alternatives for m in mail.outbox)

"""Metered overage through the real meter: each call past the included tokens
writes an outbox row in the recording transaction; a task sends it to Stripe as
a meter event identified by the usage event's id (a resend is dropped)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from django.conf import settings
from django.core import mail

from billing.limits import workspace_limits
from billing.models import BillingNotice, OverageReport, Tier
from billing.services.catalog import tier_sync_to_stripe
from billing.services.overage import overage_report_send
from tests.billing.conftest import make_tiers
from tests.billing.test_flow import subscribe
from usage.models import UsageCounter, UsageEvent

pytestmark = pytest.mark.slow

TEXT = "Metered overage is reported to Stripe from an outbox, once per usage event."


def test_overage_goes_to_stripe_once_per_usage_event(
    metered, fake_stripe, workspace, owner, make_key
):
    tiers = make_tiers()
    Tier.objects.filter(pk=tiers["team"].pk).update(included_tokens=300)
    team = tier_sync_to_stripe(tier=Tier.objects.get(pk=tiers["team"].pk))
    sub = subscribe(workspace, team, fake_stripe)
    limits = workspace_limits(workspace)
    assert limits.overage_policy == "metered"
    assert limits.overage_token_allowance == 5_000_000  # $40 cap / $8 per 1M

    _key, secret = make_key(owner.memberships.get())
    for _ in range(4):  # ~120 tokens each: the third and fourth run past 300
        response = httpx.post(
            f"{metered}/api/v1/summaries",
            json={"text": TEXT, "length": "short"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text

    used = UsageCounter.objects.get(scope="workspace", scope_id=workspace.pk).used
    reports = list(OverageReport.objects.order_by("pk"))
    assert sum(r.tokens for r in reports) == used - 300 > 0
    events = set(UsageEvent.objects.values_list("pk", flat=True))
    assert {r.usage_event_id for r in reports} <= events
    assert all(r.sent_at for r in reports)
    event_name = settings.BILLING_OVERAGE_METER_EVENT
    assert fake_stripe.meter_total(sub.stripe_customer_id, event_name) == Decimal(used - 300)

    # A resend (crashed worker, retried task) is dropped by the identifier.
    OverageReport.objects.filter(pk=reports[0].pk).update(sent_at=None)
    overage_report_send(report_pk=reports[0].pk)
    assert fake_stripe.meter_total(sub.stripe_customer_id, event_name) == Decimal(used - 300)

    # 50/80/100 % alerts: once each per period, to owners and admins.
    kinds = set(BillingNotice.objects.values_list("kind", flat=True))
    assert kinds == {"usage_50", "usage_80", "usage_100"}
    assert len(mail.outbox) == 3 and all(m.to == [owner.email] for m in mail.outbox)
    assert all(m.alternatives for m in mail.outbox)  # text + HTML


def test_the_workspace_spend_cap_stops_overage_with_402(
    metered, fake_stripe, workspace, owner, make_key
):
    tiers = make_tiers()
    # 300 included + a $0.01 cap at $100 per 1M = 100 overage tokens at most.
    Tier.objects.filter(pk=tiers["team"].pk).update(
        included_tokens=300,
        overage_price_per_million=Decimal("100"),
        overage_spend_cap=Decimal("0.01"),
    )
    team = tier_sync_to_stripe(tier=Tier.objects.get(pk=tiers["team"].pk))
    subscribe(workspace, team, fake_stripe)
    assert workspace_limits(workspace).hard_token_limit == 400

    _key, secret = make_key(owner.memberships.get())
    statuses = []
    while not statuses or (statuses[-1] == 201 and len(statuses) < 6):
        response = httpx.post(
            f"{metered}/api/v1/summaries",
            json={"text": TEXT, "length": "short"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
        statuses.append(response.status_code)
    assert statuses[-1] == 402, statuses
    error = response.json()["error"]
    assert (error["code"], error["details"]["cap"]) == ("spend_cap_reached", "workspace")
    assert UsageCounter.objects.get(scope="workspace", scope_id=workspace.pk).used <= 400
